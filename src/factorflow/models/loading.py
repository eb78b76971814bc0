"""Models from configs and checkpoints: `build_model(config)` for a fresh one, and
`factorflow.models.load`, a trained model from a run folder or checkpoint, ready to use.

In the manner of diffusers' `from_pretrained`: the checkpoint carries its own config, so a path is
all it takes. Inference (reenact, evaluate, sample, the demo) loads through here, never through
the trainer, and reads the model's weights alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from factorflow import checkpoint as ckpt
from factorflow.config import Config, from_dict, get_key, parse_overrides, replace, to_dict
from factorflow.models.base import FlowModel
from factorflow.registry import SECTIONS, spec

__all__ = ["build_model", "filled_keys", "load", "model_class", "with_use_time_overrides"]

log = logging.getLogger(__name__)


def model_class(name: str) -> type[FlowModel]:
    return spec(name).model_class()


def build_model(config: Config) -> FlowModel:
    return model_class(config.model)(config)


def filled_keys(saved: dict[str, Any], resolved: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys of `resolved` that `saved` lacks: a checkpoint older than today's config took them
    from the defaults."""
    out = []
    for key, value in resolved.items():
        if key not in saved:
            out.append(prefix + key)
        elif isinstance(value, dict) and isinstance(saved[key], dict):
            out += filled_keys(saved[key], value, f"{prefix}{key}.")
    return out


def with_use_time_overrides(config: Config, overrides: list[str], where: Path) -> Config:
    """`key=value` items for the model's use-time keys only: any other key would not match the
    checkpoint's tensors or the way it was trained."""
    allowed = spec(config.model).use_time_keys
    keys = [item.split("=", 1)[0].strip() for item in overrides]
    fixed = [k for k in keys if k not in allowed]
    if fixed:
        raise ValueError(
            f"{where}: {fixed} cannot change after training; a trained {config.model} model "
            f"takes overrides of {list(allowed)} only"
        )
    return replace(config, **parse_overrides(overrides))


def load(
    path: str | Path,
    overrides: list[str] | None = None,
    device: str | torch.device = "cpu",
    prefer_best: bool = True,
) -> tuple[FlowModel, Config]:
    """A trained model (eval mode, on `device`) and its config.

    path: a run folder (its best checkpoint when marked, else the last), its checkpoints/ folder
    or one step folder. overrides: `key=value` for the model's use-time keys
    (`ModelSpec.use_time_keys`, e.g. "af.motion=residual"); unknown keys are an error. Keys the
    checkpoint's config lacks (saved by an older version) take today's defaults, with a warning
    that names them.
    """
    state = ckpt.load(path, prefer_best=prefer_best)
    config = from_dict(state.config)
    # A section of another model (added since the checkpoint was saved) says nothing about it.
    others = set(SECTIONS) - set(spec(config.model).sections)
    filled = [
        k for k in filled_keys(state.config, to_dict(config)) if k.split(".")[0] not in others
    ]
    if filled:
        log.warning(
            "%s: config keys missing from the checkpoint took today's defaults: %s",
            state.path,
            ", ".join(f"{k}={get_key(config, k)!r}" for k in filled),
        )
    if overrides:
        config = with_use_time_overrides(config, overrides, state.path)
    model = build_model(config)
    ckpt.load_model_state(model, state.model, state.path)
    return model.to(device).eval(), config
