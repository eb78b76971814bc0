"""Models behind one interface (see `factorflow.models.base`): glow, af, mi, hybrid."""

from __future__ import annotations

import importlib

from factorflow.config import Config
from factorflow.models.base import BatchRandom, FlowModel

REGISTRY = {
    "glow": "factorflow.models.glow:GlowModel",
    "af": "factorflow.models.af:AFModel",
    "mi": "factorflow.models.mi:MIModel",
    "hybrid": "factorflow.models.hybrid:HybridModel",
}


def model_class(name: str) -> type[FlowModel]:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}: choose one of {sorted(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(config: Config) -> FlowModel:
    return model_class(config.model)(config)


__all__ = ["BatchRandom", "FlowModel", "build_model", "model_class"]
