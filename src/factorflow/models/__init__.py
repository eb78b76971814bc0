"""Models behind one interface (`factorflow.models.base.FlowModel`), one registry
(`factorflow.registry`) and one loader (`factorflow.models.loading`: `build_model`, `load`)."""

from __future__ import annotations

from factorflow.models.base import BatchRandom, FlowModel
from factorflow.models.loading import build_model, load, model_class
from factorflow.registry import MODELS, ModelSpec, register, spec

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
