"""The flow's squeeze-grid artifact: energy at the period-2 frequency of the mouth crop.

A 2x2 squeeze leaves a pattern that repeats every 2 pixels of the crop the flow paints, so its
energy sits at the crop's Nyquist frequencies (pi, 0), (0, pi) and (pi, pi). `grid_energy`
measures, per crop, the mean power at those three points (two bins either side) over the mean
power on the lines from 0 to them, at 0.3-0.44 cycles/pixel: a natural image's spectrum falls
smoothly along a line (a ratio below 1, edges included), a grid adds a peak at its end. Contrast
changes both parts alike.

`grid_ratio` compares an output with real mouths at the same opening: the median of the output's
energies over the median of their references, a reference being the median energy of the
`neighbours` real frames whose inner-lip opening is nearest. 1 = as in real mouths; a grid made on
purpose scores far above.
"""

from __future__ import annotations

import functools

import numpy as np

from factorflow.metrics.realism.crops import CROP_SIZE, grey, mouth_crops, opening

__all__ = ["BAND", "PEAK_RADIUS", "crop_grid_energy", "grid_energy", "grid_ratio"]

PEAK_RADIUS = 2  # bins about each Nyquist point (and across the reference line)
BAND = (0.3, 0.44)  # cycles per pixel: the reference, on the same line towards 0


@functools.cache
def _masks(size: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """For (pi, 0), (0, pi), (pi, pi): bool [size, size] (peak bins, reference bins) of an
    fftshift-ed spectrum. The reference lies on the line from 0 to the peak, so an edge's
    spectral line through a Nyquist point is in both and cancels."""
    f = np.fft.fftshift(np.fft.fftfreq(size))
    ay, ax = (np.abs(g) for g in np.meshgrid(f, f, indexing="ij"))
    r = PEAK_RADIUS / size + 1e-9
    at_half = lambda a: a >= 0.5 - r  # noqa: E731
    in_band = lambda a: (a >= BAND[0]) & (a <= BAND[1])  # noqa: E731
    return (
        (at_half(ax) & (ay <= r), in_band(ax) & (ay <= r)),
        (at_half(ay) & (ax <= r), in_band(ay) & (ax <= r)),
        (at_half(ax) & at_half(ay), in_band(ax) & in_band(ay) & (np.abs(ax - ay) <= r)),
    )


def crop_grid_energy(crops: np.ndarray) -> np.ndarray:
    """[N] peak-over-band power of uint8 crops [N, S, S, 3] (Hann-windowed luma spectrum)."""
    size = crops.shape[1]
    g = grey(crops)
    g = g - g.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.hanning(size), np.hanning(size))
    power = np.abs(np.fft.fftshift(np.fft.fft2(g * window), axes=(1, 2))) ** 2
    peak = sum(power[:, p].mean(1) for p, _ in _masks(size))
    band = sum(power[:, b].mean(1) for _, b in _masks(size))
    return peak / np.maximum(band, 1e-12)


def grid_energy(frames: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """[T] grid energy of each frame's mouth crop (NaN where no face).

    frames uint8 [T,H,W,3], landmarks [T, 478, 2]; `size`: the flow's crop (64 shipped)."""
    crops, ok = mouth_crops(frames, landmarks, size)
    out = np.full(len(frames), np.nan)
    if ok.any():
        out[ok] = crop_grid_energy(crops[ok])
    return out


def grid_ratio(
    frames: np.ndarray,
    landmarks: np.ndarray,
    real_frames: np.ndarray,
    real_landmarks: np.ndarray,
    size: int = CROP_SIZE,
    neighbours: int = 5,
) -> dict:
    """Grid energy of an output [T,H,W,3] against real mouths [R,H',W',3] at the same opening.

    -> {"grid_ratio", "grid_ratio_p95" (of the per-frame ratios), "grid_energy" (the output's
    median), "real_energy" (the real frames' median)}. landmarks [T|R, 478, 2], NaN rows where
    no face."""
    energy, reference = (
        grid_energy(frames, landmarks, size),
        grid_energy(real_frames, real_landmarks, size),
    )
    ok_real = np.isfinite(reference)
    if not ok_real.any():
        raise ValueError(f"no real frame with a face (checked {len(real_frames)})")
    ref_open, ref_energy = opening(real_landmarks)[ok_real], reference[ok_real]
    out_open = opening(landmarks)
    matched = np.full(len(frames), np.nan)
    k = min(neighbours, len(ref_energy))
    for t in np.flatnonzero(np.isfinite(energy)):
        matched[t] = np.median(ref_energy[np.argsort(np.abs(ref_open - out_open[t]))[:k]])
    ok = np.isfinite(matched)
    if not ok.any():
        raise ValueError(f"no output frame with a face (checked {len(frames)})")
    ratio = energy[ok] / matched[ok]
    return {
        "grid_ratio": float(np.median(energy[ok]) / np.median(matched[ok])),
        "grid_ratio_p95": float(np.percentile(ratio, 95)),
        "grid_energy": float(np.median(energy[ok])),
        "real_energy": float(np.median(ref_energy)),
    }
