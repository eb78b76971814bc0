"""Controlled generation on one target face, through the model's mouth-factor methods
(`FlowModel.mouth_factor`, `render_mouth`, `draw_mouth`):

- `traverse`: the face's own factor moved along the training clips' principal directions of
  mouth motion, from -k to +k standard deviations (step 0 is the face itself);
- `word_clip`: the face's factor plus a word's typical motion from the training clips, frame by
  frame: a clip of the face saying the word;
- `draws`: for models with a conditional prior, mouths drawn from it given another frame's
  condition.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from factorflow.control.stats import ControlStats
from factorflow.models.base import FlowModel, flatten_levels, unflatten_levels

__all__ = [
    "RENDERERS",
    "SEQUENCES",
    "draws",
    "face_factor",
    "mouth_change_ratio",
    "render",
    "step_values",
    "sweep_frames",
    "traverse",
    "word_clip",
]

SEQUENCES = ("mean", "medoid")  # a word's motion: mean over its training clips, or their medoid
RENDERERS = ("model", "flow")  # the model's render_mouth, or the stats' flow map through its Glow


@torch.no_grad()
def render(
    model: FlowModel,
    face: Tensor,
    base: Tensor,
    factors: Tensor,
    stats: ControlStats,
    renderer: str = "model",
    batch_size: int = 64,
) -> Tensor:
    """The face uint8 [3,H,W] with each of factors [N,D] as its mouth -> uint8 [N,3,H,W].

    "model": `model.render_mouth`. "flow": the face's flow latent plus the latent change the stats'
    flow map gives for the factor change from the face's own factor `base` [D], decoded by the
    model's plain Glow."""
    if renderer not in RENDERERS:
        raise ValueError(f"--renderer {renderer}: expected one of {', '.join(RENDERERS)}")
    if renderer == "model":
        return model.render_mouth(face.to(model.device), factors).cpu()
    glow = model.plain_glow()
    if glow is None:
        raise ValueError(f"a {model.name} model has no plain flow: use --renderer model")
    if stats.flow_map is None:
        raise ValueError(
            "these control stats hold no flow map: make them with --renderer flow (with --data, "
            "and --force to remake stored --stats)"
        )
    zs = glow.encode(face[None].to(model.device))
    shapes = [tuple(z.shape[1:]) for z in zs]
    z_face = flatten_levels(zs)
    m = len(stats.flow_map)
    coords = (factors - base).to(z_face) @ stats.directions[:m].to(z_face).T
    out = []
    for i in range(0, len(coords), batch_size):
        z = z_face + coords[i : i + batch_size] @ stats.flow_map.to(z_face)
        out.append(glow.decode(unflatten_levels(z, shapes)).cpu())
    return torch.cat(out)


def face_factor(model: FlowModel, face: Tensor, stats: ControlStats | None = None) -> Tensor:
    """The mouth factor [D] of a still face uint8 [3,H,W]; checks it against the stats' size."""
    factor = model.mouth_factor(face[None].to(model.device))[0].float()
    if stats is not None and factor.numel() != stats.dim:
        raise ValueError(
            f"the control stats describe a factor of {stats.dim} numbers but this {model.name} "
            f"model's has {factor.numel()}: they were made for another checkpoint"
        )
    return factor


def step_values(steps: int, extent: float) -> Tensor:
    """`steps` evenly spaced multiples of the standard deviation in [-extent, +extent]."""
    if steps < 2:
        raise ValueError(f"--steps must be at least 2, got {steps}")
    if not extent > 0:
        raise ValueError(f"--extent must be > 0 standard deviations, got {extent}")
    return torch.linspace(-extent, extent, steps)


@torch.no_grad()
def traverse(
    model: FlowModel,
    face: Tensor,
    stats: ControlStats,
    directions: int = 3,
    steps: int = 7,
    extent: float = 2.5,
    renderer: str = "model",
) -> Tensor:
    """uint8 [K,S,3,H,W]: row k moves the face's factor along direction k, column j by
    `step_values(steps, extent)[j]` of that direction's standard deviation."""
    k = len(stats.directions)
    if not 1 <= directions <= k:
        raise ValueError(f"--directions must be 1..{k} (the stats hold {k}), got {directions}")
    base = face_factor(model, face, stats)
    alphas = step_values(steps, extent)
    dirs = stats.directions[:directions].to(base)
    sd = stats.sd[:directions].to(base)
    factors = base + (alphas[None, :, None].to(base) * sd[:, None, None]) * dirs[:, None, :]
    frames = render(model, face, base, factors.flatten(0, 1), stats, renderer)
    return frames.view(directions, steps, *frames.shape[1:])


@torch.no_grad()
def word_clip(
    model: FlowModel,
    face: Tensor,
    stats: ControlStats,
    word: str,
    gain: float | None = None,
    sequence: str = "mean",
    renderer: str = "model",
) -> Tensor:
    """uint8 [T,3,H,W]: the face saying `word`: its factor plus `gain` x the word's motion,
    `sequence` "mean" (over the word's training clips) or "medoid" (the clip nearest it).
    gain None: the stats' word gain for a mean (a single clip's amplitude), 1 for a medoid."""
    if sequence not in SEQUENCES:
        raise ValueError(f"--sequence {sequence}: expected one of {', '.join(SEQUENCES)}")
    index = stats.word_index(word)
    base = face_factor(model, face, stats)
    motion = stats.word_motion if sequence == "mean" else stats.word_medoid
    if gain is None:
        auto = sequence == "mean" and stats.word_gain is not None
        gain = float(stats.word_gain[index]) if auto else 1.0
    factors = base + gain * motion[index].to(base)
    return render(model, face, base, factors, stats, renderer)


@torch.no_grad()
def draws(
    model: FlowModel,
    face: Tensor,
    conditions: Tensor,
    n: int,
    temperature: float = 0.7,
    generator: torch.Generator | None = None,
) -> Tensor:
    """uint8 [M, 1+n, 3,H,W]: per condition frame of conditions [M,3,H,W], that frame and n
    draws of the face's mouth from the conditional prior given it."""
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    rows = []
    for frame in conditions:
        drawn = model.draw_mouth(
            face.to(model.device), frame.to(model.device), n, temperature, generator
        ).cpu()
        rows.append(torch.cat([frame[None].cpu(), drawn]))
    return torch.stack(rows)


def sweep_frames(grid: Tensor, pad: int = 1) -> np.ndarray:
    """A traversal [K,S,3,H,W] -> GIF frames uint8 [2S-2, H, K*(W+pad)-pad, 3]: the K directions
    side by side, sweeping from -k to +k and back."""
    k, s, _, h, w = grid.shape
    order = list(range(s)) + list(range(s - 2, 0, -1))
    out = np.full((len(order), h, k * (w + pad) - pad, 3), 255, np.uint8)
    hwc = grid.permute(0, 1, 3, 4, 2).numpy()
    for f, j in enumerate(order):
        for row in range(k):
            out[f, :, row * (w + pad) : row * (w + pad) + w] = hwc[row, j]
    return out


def mouth_change_ratio(grid: Tensor, box: tuple[float, float, float, float]) -> float:
    """How much a traversal [K,S,3,H,W] changes inside a box (top, bottom, left, right fractions)
    against outside it: mean abs change from the row's middle frame, inside / outside (inf when
    nothing outside changes and something inside does)."""
    k, s, _, h, w = grid.shape
    x = grid.float()
    change = (x - x[:, s // 2 : s // 2 + 1]).abs().mean((0, 1, 2))
    top, bottom, left, right = box
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[round(top * h) : round(bottom * h), round(left * w) : round(right * w)] = True
    a, b = float(change[inside].mean()), float(change[~inside].mean())
    if b == 0:
        return float("inf") if a > 0 else 0.0
    return a / b
