"""The evaluation's contact sheet: driver | target | ground truth | each method, a few frames of
the first pairs."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from factorflow.metrics.clips import ClipSet, spread_indices
from factorflow.metrics.judges import OPENING
from factorflow.metrics.scoring import GROUND_TRUTH

__all__ = ["contact_sheet"]


def contact_sheet(
    test: ClipSet,
    pair_list: list[tuple[int, int]],
    truth: Tensor,
    outputs: dict[str, Tensor],
    n_pairs: int,
    n_frames: int = 4,
) -> np.ndarray:
    """Contact sheet uint8 [H,W,3]: columns driver | target | ground truth | each method; for each
    of the first `n_pairs` pairs, `n_frames` rows at the driver's most different mouth openings."""
    names = ["driver", "target", GROUND_TRUTH, *outputs]
    rows = []
    for p, (t, d) in enumerate(pair_list[:n_pairs]):
        opening = test.mouth[d, :, OPENING]
        order = torch.argsort(opening)
        picks = sorted({int(order[i]) for i in spread_indices(len(order), n_frames)})
        for f in picks:
            tf = min(f, test.frames.shape[1] - 1)
            tiles = [test.frames[d, f], test.frames[t, tf], truth[p, f]]
            tiles += [o[p, f] for o in outputs.values()]
            rows.append(torch.cat([x.permute(1, 2, 0) for x in tiles], 1))
    body = torch.cat(rows, 0).numpy()
    size = test.frames.shape[-1]
    scale = max(1, 128 // size)
    body = body.repeat(scale, 0).repeat(scale, 1)
    tile = size * scale
    header = Image.new("RGB", (body.shape[1], 14), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    for i, name in enumerate(names):
        draw.text((i * tile + 2, 2), name[: tile // 6], fill=(0, 0, 0))
    return np.concatenate([np.asarray(header), body], 0)
