"""The methods an evaluation runs (the model and the chosen baselines, each as a `Method`) and the
loop that runs every method on every pair."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from torch import Tensor

from factorflow.config import Config
from factorflow.data.synth import MOUTH_FACTORS
from factorflow.metrics.baselines import (
    BASELINES,
    CopyTarget,
    GlowAttribute,
    GlowResidual,
    PixelPaste,
)
from factorflow.metrics.clips import ClipSet, spread_indices
from factorflow.models.base import FlowModel

__all__ = ["Method", "baseline_methods", "on_device", "reenact_pairs", "select_baselines"]

log = logging.getLogger(__name__)

# A method: (driver, target, driver_masks, target_masks) -> uint8 frames [T,3,H,W].
Method = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def select_baselines(baselines: str | list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(baselines, str):
        if baselines == "all":
            return list(BASELINES)
        if baselines == "none":
            return []
        baselines = [b.strip() for b in baselines.split(",") if b.strip()]
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}: choose from {list(BASELINES)}, all or none")
    return [b for b in BASELINES if b in baselines]


def on_device(module: FlowModel, reenact: Callable[[Tensor, Tensor], Tensor]) -> Method:
    """A model-like `reenact(driver, target)` as a Method running on the module's device."""
    return lambda d, t, dm, tm: reenact(d.to(module.device), t.to(module.device))


def baseline_methods(
    chosen: list[str], model: FlowModel, config: Config, train: ClipSet, attribute_clips: int
) -> tuple[dict[str, Method], dict[str, str], FlowModel | None]:
    """The chosen baselines as Methods, the ones skipped (name -> why), and the Glow view."""
    methods: dict[str, Method] = {}
    skipped: dict[str, str] = {}
    if "copy-target" in chosen:
        copy = CopyTarget()
        methods["copy-target"] = lambda d, t, dm, tm: copy.reenact(d, t)
    if "pixel-paste" in chosen:
        paste = PixelPaste()
        methods["pixel-paste"] = lambda d, t, dm, tm: paste.reenact(
            d, t, driver_masks=dm, target_masks=tm
        )
    wanted = [n for n in ("glow-swap", "glow-attribute", "glow-residual") if n in chosen]
    view = model.plain_glow() if wanted else None
    if view is None:
        for name in wanted:
            skipped[name] = "the model's flow is conditional (or absent): no plain Glow to run"
        return methods, skipped, None
    if "glow-swap" in chosen:
        if view is model:
            skipped["glow-swap"] = f"identical to the evaluated {config.model} model"
        else:
            methods["glow-swap"] = on_device(view, view.reenact)
    if "glow-attribute" in chosen:
        idx = spread_indices(len(train.clips), attribute_clips)
        log.info("fitting attribute vectors on %d training clips", len(idx))
        attribute = GlowAttribute.fit(
            view, train.frames[idx], train.mouth[idx], list(MOUTH_FACTORS)
        )
        methods["glow-attribute"] = on_device(view, attribute.reenact)
    if "glow-residual" in chosen:
        methods["glow-residual"] = on_device(view, GlowResidual(view).reenact)
    return methods, skipped, view


def reenact_pairs(
    methods: dict[str, Method], test: ClipSet, pair_list: list[tuple[int, int]]
) -> tuple[dict[str, Tensor], dict[str, float]]:
    """Every method on every pair -> outputs uint8 [P,T,3,H,W] and seconds spent, per method."""
    outputs: dict[str, Tensor] = {}
    seconds: dict[str, float] = {}
    for i, (name, method) in enumerate(methods.items()):
        log.info("reenacting %d pairs with %s (%d/%d)", len(pair_list), name, i + 1, len(methods))
        frames, spent = [], 0.0
        with torch.no_grad():
            for t, d in pair_list:
                start = time.perf_counter()
                frames.append(
                    method(test.frames[d], test.frames[t], test.masks[d], test.masks[t]).cpu()
                )
                spent += time.perf_counter() - start
        outputs[name] = torch.stack(frames)
        seconds[name] = spent
    return outputs, seconds
