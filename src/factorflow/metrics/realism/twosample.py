"""A real-versus-generated two-sample test on mouth crops (0.5 = indistinguishable).

Every crop (`crops`: the flow's alignment and size) becomes a few simple statistics: the luma's
radial power spectrum in SPECTRUM_BANDS bands (blur, noise, grids), the squeeze-grid energy
(`grid`), gradient magnitudes in the centre and the rim of the crop (a flat or smeared mouth),
and the colour (CIELAB mean and spread) of the centre and the rim (a dark hole, lost lips). A
class-weighted L2 logistic regression tells real from generated, on the statistics less the
median of the same group's real crops (so every group needs real crops: a face is judged against
its own real mouth, and its resolution or complexion is no cue).

It is trained and tested on disjoint groups (faces or clips, given by the caller): each group is
held out in turn and scored by a classifier fitted on all the others, so a face is never judged
by a classifier that saw it. The figure is the balanced held-out accuracy (the mean of the real
and the generated crops' accuracies), with a 95% bootstrap interval that resamples groups
(`metrics.bootstrap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from factorflow.metrics.realism.crops import CROP_SIZE, grey, mouth_crops
from factorflow.metrics.realism.grid import crop_grid_energy
from factorflow.metrics.realism.lips import lab

__all__ = [
    "L2",
    "SPECTRUM_BANDS",
    "Clip",
    "balanced_accuracy",
    "clip_crops",
    "crop_features",
    "fit_logistic",
    "held_out_predictions",
    "jittered",
    "radial_spectrum",
    "relative_to_real",
    "two_sample_crops",
    "two_sample_test",
]

SPECTRUM_BANDS = 8
L2 = 1e-2


class Clip(NamedTuple):
    """Frames uint8 [T,H,W,3], landmarks [T, 478, 2] (NaN rows where no face) and the group
    (face or clip) they belong to."""

    frames: np.ndarray
    landmarks: np.ndarray
    group: str


def radial_spectrum(luma: np.ndarray, bands: int = SPECTRUM_BANDS) -> np.ndarray:
    """[N, bands] log share of the AC power in equal radial bands of luma crops [N, S, S]."""
    size = luma.shape[1]
    f = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    window = np.outer(np.hanning(size), np.hanning(size))
    centred = luma - luma.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(centred * window)) ** 2
    edges = np.linspace(0, 0.5, bands + 1)
    parts = [
        power[:, (radius > lo) & (radius <= hi)].sum(1)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    parts = np.stack(parts, 1)
    return np.log(parts / np.maximum(parts.sum(1, keepdims=True), 1e-12) + 1e-9)


def crop_features(crops: np.ndarray) -> np.ndarray:
    """[N, F] statistics of uint8 mouth crops [N, S, S, 3] (module docstring)."""
    size = crops.shape[1]
    luma = grey(crops)
    gy, gx = np.gradient(luma, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    y, x = np.mgrid[:size, :size] / (size - 1) - 0.5
    centre = (np.abs(x) < 0.3) & (np.abs(y) < 0.25)
    colour = lab(crops)
    parts = [radial_spectrum(luma), np.log(crop_grid_energy(crops) + 1e-6)[:, None]]
    for where in (centre, ~centre):
        g = magnitude[:, where]
        parts.append(np.log(np.percentile(g, [50, 90], axis=1).T + 1e-3))
        parts.append(colour[:, where].mean(1))
        parts.append(colour[:, where].std(1))
    return np.concatenate(parts, 1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2):
    """A class-weighted L2 logistic regression on x [N, F], y [N] in {0, 1}; -> predict(x) [N]
    in {0, 1}. Features are standardised on the training set."""
    import torch

    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mean) / std, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    share = yt.mean().clamp(1e-3, 1 - 1e-3)
    weight = torch.where(yt > 0, 0.5 / share, 0.5 / (1 - share))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = xt @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, weight=weight)
        loss = loss + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w_, b_ = w.detach().numpy(), float(b.detach())
    return lambda z: ((z - mean) / std @ w_ + b_ > 0).astype(int)


def relative_to_real(x: np.ndarray, y: np.ndarray, groups: np.ndarray, names) -> np.ndarray:
    """Features [N, F] less the median of their group's real crops (y == 0): each face is judged
    against its own real mouth, so its resolution or complexion is no cue."""
    out = np.empty_like(x)
    for i, name in enumerate(names):
        mine, own = groups == i, (groups == i) & (y == 0)
        if not own.any():
            raise ValueError(f"group {name!r} has no real crops to be judged against")
        out[mine] = x[mine] - np.median(x[own], 0)
    return out


def held_out_predictions(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """[N] predictions of each sample by a classifier fitted without its group."""
    pred = np.full(len(y), -1)
    for g in np.unique(groups):
        test = groups == g
        train_y = y[~test]
        if len(np.unique(train_y)) < 2:
            raise ValueError(
                f"holding out group {g!r} leaves one class only: every class needs at least two "
                f"groups (groups: {sorted(set(groups.tolist()))})"
            )
        pred[test] = fit_logistic(x[~test], train_y)(x[test])
    return pred


def balanced_accuracy(correct: np.ndarray, y: np.ndarray, groups: np.ndarray, names) -> dict:
    """Balanced accuracy with a bootstrap interval over groups, and per group (NaN for a class
    a group lacks)."""
    import torch

    from factorflow.metrics.bootstrap import PairMeans, percentile_interval, resample_counts

    per_class = []
    for label in (0, 1):
        values = np.full((len(names), max(1, np.bincount(groups).max())), np.nan)
        for i in range(len(names)):
            hits = correct[(groups == i) & (y == label)]
            values[i, : len(hits)] = hits
        per_class.append(PairMeans.of(torch.tensor(values)))
    counts = resample_counts(len(names))
    draws = 0.5 * (per_class[0].resampled(counts) + per_class[1].resampled(counts))
    low, high = percentile_interval(draws)
    per_group = {}
    for i, name in enumerate(names):
        accs = [
            correct[(groups == i) & (y == c)].mean()
            for c in (0, 1)
            if ((groups == i) & (y == c)).any()
        ]
        per_group[name] = float(np.mean(accs))
    return {
        "accuracy": 0.5 * (per_class[0].value + per_class[1].value),
        "interval": (low, high),
        "per_group": per_group,
    }


def two_sample_crops(
    real: np.ndarray, real_groups: Sequence[str], fake: np.ndarray, fake_groups: Sequence[str]
) -> dict:
    """Crops uint8 [N, S, S, 3] real and [M, S, S, 3] generated with their group names.

    -> {"accuracy": balanced held-out accuracy, "interval": 95% (low, high), "per_group": name ->
    balanced accuracy on that group's crops (one class only: that class's accuracy), "real": N,
    "generated": M, "groups": count}."""
    if len(real) != len(real_groups) or len(fake) != len(fake_groups):
        raise ValueError("one group name per crop expected")
    names = sorted(set(real_groups) | set(fake_groups))
    index = {n: i for i, n in enumerate(names)}
    groups = np.array([index[g] for g in [*real_groups, *fake_groups]])
    x = crop_features(np.concatenate([real, fake]))
    y = np.r_[np.zeros(len(real), int), np.ones(len(fake), int)]
    x = relative_to_real(x, y, groups, names)
    correct = (held_out_predictions(x, y, groups) == y).astype(float)
    out = balanced_accuracy(correct, y, groups, names)
    return {**out, "real": len(real), "generated": len(fake), "groups": len(names)}


def clip_crops(clips: Sequence[Clip], size: int = CROP_SIZE) -> tuple[np.ndarray, list[str]]:
    """Crops [N, S, S, 3] of the frames with a face of `clips`, and each crop's group."""
    crops, groups = [], []
    for clip in clips:
        c, ok = mouth_crops(clip.frames, clip.landmarks, size)
        crops.append(c[ok])
        groups += [clip.group] * int(ok.sum())
    if not groups:
        raise ValueError(f"no frame with a face in {len(clips)} clips")
    return np.concatenate(crops), groups


def two_sample_test(real: Sequence[Clip], generated: Sequence[Clip], size: int = CROP_SIZE) -> dict:
    """Real against generated clips (`two_sample_crops`); each class needs >= 2 groups."""
    real_crops, real_groups = clip_crops(real, size)
    fake_crops, fake_groups = clip_crops(generated, size)
    return two_sample_crops(real_crops, real_groups, fake_crops, fake_groups)


def jittered(clip: Clip, copies: int, rng: np.random.Generator, shift: float = 0.02) -> Clip:
    """`copies` versions of each frame with its landmarks moved by a small random similarity
    (translation and scale of about `shift` of the inter-ocular distance): several real crops of
    a still, at the alignment noise of a tracked face."""
    from factorflow.face.landmarks import interocular

    frames, marks = [], []
    for frame, lm in zip(clip.frames, clip.landmarks, strict=True):
        iod = float(interocular(lm))
        centre = np.nanmean(lm, 0)
        for _ in range(copies):
            scale = 1 + rng.normal(0, shift)
            move = rng.normal(0, shift * iod, 2)
            frames.append(frame)
            marks.append(centre + scale * (lm - centre) + move)
    return Clip(np.stack(frames), np.stack(marks), clip.group)
