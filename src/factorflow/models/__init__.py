"""Models behind one interface (`factorflow.models.base.FlowModel`), one registry
(`factorflow.models.registry`) and one loader (`load`): glow, af, mi, hybrid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from factorflow.models.base import BatchRandom, FlowModel
from factorflow.models.registry import MODELS, ModelSpec, register, spec

if TYPE_CHECKING:
    from factorflow.config import Config


def model_class(name: str) -> type[FlowModel]:
    return spec(name).model_class()


def build_model(config: Config) -> FlowModel:
    return model_class(config.model)(config)


def __getattr__(name: str):  # noqa: ANN202
    # `load` (models/loading.py) imports the config, which imports this package's registry:
    # resolved on first use to keep that import order free of cycles.
    if name == "load":
        from factorflow.models.loading import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODELS",
    "BatchRandom",
    "FlowModel",
    "ModelSpec",
    "build_model",
    "load",
    "model_class",
    "register",
    "spec",
]
