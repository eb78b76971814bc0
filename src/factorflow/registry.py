"""Everything the rest of factorflow knows about a model, in one entry per model.

The config's sections, the CLI's `--model` choices, the trainer's resume check, the two-stage
recipe and the keys a trained model takes at use time all derive from `MODELS`. Adding a model
means one module under `factorflow/models/` (a `FlowModel` subclass) and one
`register(ModelSpec(...))` entry here (or, for a model that lives outside the package, a call to
`register` before it is used).

This module imports nothing of the project (entries name their classes and config sections as
"module:Class"), so the config can build its sections from it without importing any model.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BATCH_KINDS",
    "MODELS",
    "PIPELINES",
    "SECTIONS",
    "ModelSpec",
    "Stage1",
    "register",
    "section_classes",
    "spec",
]


@dataclass(frozen=True)
class Stage1:
    """A model trained in two stages: `train` first trains `model` (a flow) in RUN_DIR/stage1,
    then this model on its frozen weights. Each field names a config key ("section.key")."""

    model: str  # the stage-1 model
    steps: str  # its number of steps
    batch_size: str  # its batch size (frames)
    checkpoint: str  # a finished stage 1 given by the user: skip training it


# "frames": batch["image"] [B,3,H,W]; "clips": batch["frames"] [B,T,3,H,W]; "pairs": two frames of
# one clip with their landmark geometry (`data.pairs.PairDataset`).
BATCH_KINDS = ("frames", "clips", "pairs")
PIPELINES = ("crops", "mouth-paste")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    target: str  # "module:Class" of the FlowModel subclass
    batch_kind: str  # one of BATCH_KINDS
    sections: tuple[str, ...] = ()  # config sections (besides "flow") that define its tensors
    stage1: Stage1 | None = None
    use_time_keys: tuple[str, ...] = ()  # config keys a trained model may change (reenact/evaluate)
    vocabulary_key: str = ""  # config key that `train` fills with the training set's word count
    speakers_key: str = ""  # config key that `train` fills with the training set's speaker count
    can_sample: bool = True  # unconditional samples from its prior (`factorflow sample`)
    # How it reenacts a video at use time: "crops" (model-sized aligned face crops, pasted back
    # by Poisson blending) or "mouth-paste" (a landmark warp of the mouth at the frame's own
    # resolution, the model painting the mouth interior: `reenact.mouthreenact`).
    pipeline: str = "crops"

    def __post_init__(self) -> None:
        if self.batch_kind not in BATCH_KINDS:
            raise ValueError(f"model {self.name!r}: batch_kind must be one of {BATCH_KINDS}")
        if self.pipeline not in PIPELINES:
            raise ValueError(f"model {self.name!r}: pipeline must be one of {PIPELINES}")

    def model_class(self) -> type:
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)


# Config sections that models may declare: name -> "module:Class" of a frozen dataclass.
SECTIONS: dict[str, str] = {
    "af": "factorflow.factor.config:AFConfig",
    "mi": "factorflow.factor.config:MIConfig",
    "mc": "factorflow.factor.config:MCConfig",
    "mouthflow": "factorflow.factor.config:MouthFlowConfig",
}

MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    unknown = [s for s in spec.sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"model {spec.name!r} names unknown config sections {unknown}")
    if spec.stage1 is not None and spec.stage1.model not in MODELS:
        raise ValueError(f"model {spec.name!r}: stage-1 model {spec.stage1.model!r} unknown")
    MODELS[spec.name] = spec
    return spec


def spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {sorted(MODELS)}")
    return MODELS[name]


def section_classes() -> dict[str, Any]:
    out = {}
    for name, target in SECTIONS.items():
        module, cls = target.split(":")
        out[name] = getattr(importlib.import_module(module), cls)
    return out


_AF_STAGE1 = {
    "steps": "af.stage1_steps",
    "batch_size": "af.stage1_batch_size",
    "checkpoint": "af.glow_checkpoint",
}

register(ModelSpec("glow", "factorflow.models.glow:GlowModel", "frames"))
register(
    ModelSpec(
        "af",
        "factorflow.models.af:AFModel",
        "clips",
        sections=("af",),
        stage1=Stage1("glow", **_AF_STAGE1),
        use_time_keys=("af.motion",),
        vocabulary_key="af.num_words",
    )
)
register(
    ModelSpec(
        "mi",
        "factorflow.models.mi:MIModel",
        "frames",
        sections=("mi",),
        use_time_keys=("mi.fine_latents",),
        can_sample=False,
    )
)
register(
    ModelSpec(
        "hybrid",
        "factorflow.models.hybrid:HybridModel",
        "clips",
        sections=("af", "mi"),
        stage1=Stage1("mi", **_AF_STAGE1),
        use_time_keys=("af.motion", "mi.fine_latents"),
        vocabulary_key="af.num_words",
        can_sample=False,
    )
)
register(
    ModelSpec(
        "motioncode",
        "factorflow.models.motioncode:MotionCodeModel",
        "clips",
        sections=("af", "mc"),
        stage1=Stage1("glow", **_AF_STAGE1),
        use_time_keys=("mc.top_k", "mc.temperature"),
        vocabulary_key="af.num_words",
        speakers_key="mc.num_speakers",
        can_sample=False,
    )
)
register(
    ModelSpec(
        "mouthflow",
        "factorflow.models.mouthflow:MouthFlowModel",
        "pairs",
        sections=("mouthflow",),
        use_time_keys=("mouthflow.temperature",),
        can_sample=False,
        pipeline="mouth-paste",
    )
)
