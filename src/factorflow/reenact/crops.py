"""Reenact inputs that are already model-sized face crops (synthetic data; `--no-align`)."""

from __future__ import annotations

import numpy as np

from factorflow.images import to_hwc
from factorflow.models.base import FlowModel
from factorflow.reenact.media import side_by_side, to_model_frames

__all__ = ["reenact_crops"]


def reenact_crops(
    model: FlowModel,
    driver: np.ndarray,
    target: np.ndarray,
    device: str = "cpu",
    show_inputs: bool = False,
    names: tuple[str, str] = ("driver", "target"),
) -> np.ndarray:
    """uint8 crops [T,S,S,3] of the driver and [T',S,S,3] of the target -> [T,S,S,3]: the target
    saying what the driver says; with `show_inputs`, driver | target | result side by side.
    `names` describe the two inputs in errors (e.g. "driver clip.mp4")."""
    size = model.frame_size
    d = to_model_frames(driver, size, names[0]).to(device)
    t = to_model_frames(target, size, names[1]).to(device)
    result = to_hwc(model.reenact(d, t))
    if not show_inputs:
        return result
    shown = target[: len(result)] if len(target) >= len(result) else target[:1]
    return side_by_side(driver, shown, result)
