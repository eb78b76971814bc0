"""Similarity alignment of faces to a fixed LRW-like framing, and the warps in and out of it.

A transform is a 2x3 affine matrix M mapping source pixel coordinates to crop pixel coordinates,
`crop_xy = M[:, :2] @ src_xy + M[:, 2]`, with pixel centres at integer coordinates (OpenCV's
convention). Pasting a crop back into its frame warps it by `inverse(M)`.

The template (TEMPLATE, in the unit square, x right, y down) places the five points:

    left eye centre   (0.365, 0.420)     right eye centre   (0.635, 0.420)
    nose tip          (0.500, 0.545)
    left mouth corner (0.390, 0.700)     right mouth corner (0.610, 0.700)

so the face is centred horizontally, the mouth centre sits at (0.5, 0.70) in the lower middle of
the crop and the mouth is 0.22 of the crop wide. Mouth width over inter-ocular distance is 0.81,
a typical adult ratio (DATA.md measures 0.80 on carphone). The proportions are chosen to resemble
LRW's face-centred frames, where the mouth spans roughly a fifth of the width. On carphone the
top of the face mesh lands near y = 0.18, the chin near y = 0.92 and the cheeks at x = 0.21 and
0.78. The nose tip sits where MediaPipe's point 1 projects in frontal faces (42% of the way from
the eye line to the mouth).

All five points enter a least-squares fit (Umeyama), rather than pinning the mouth corners:
mouth width changes during speech, and normalising it per frame would erase that motion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "MAX_SUPERSAMPLING",
    "TEMPLATE",
    "alignment_transforms",
    "inverse",
    "smooth_track",
    "template_points",
    "transform_points",
    "umeyama",
    "warp",
]

TEMPLATE = np.array(
    [[0.365, 0.420], [0.635, 0.420], [0.500, 0.545], [0.390, 0.700], [0.610, 0.700]]
)
MAX_SUPERSAMPLING = 8


def template_points(size: int) -> np.ndarray:
    """The five template points [5, 2] in pixel coordinates of a size x size crop."""
    return TEMPLATE * size - 0.5


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) taking
    points `src` [K, 2] onto `dst` [K, 2]. Returns M [2, 3] with dst ~ M[:, :2] @ src + M[:, 2].

    Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
    TPAMI 1991, with optional non-negative per-point `weights` [K].
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_src, mu_dst = w @ src, w @ dst
    src_c, dst_c = src - mu_src, dst - mu_dst
    var_src = w @ (src_c**2).sum(axis=1)
    if not var_src > 1e-12:
        raise ValueError(f"cannot fit a similarity to coincident points {src.tolist()}")
    cov = (dst_c * w[:, None]).T @ src_c
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / var_src
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_dst - matrix[:, :2] @ mu_src
    return matrix


def alignment_transforms(points: np.ndarray, size: int) -> np.ndarray:
    """Per-frame transforms [T, 2, 3] taking five points [T, 5, 2] onto the template."""
    dst = template_points(size)
    return np.stack([umeyama(p, dst) for p in points])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply M [2, 3] (or one per leading index, [..., 2, 3]) to points [..., K, 2]."""
    matrix = np.asarray(matrix)
    return points @ np.swapaxes(matrix[..., :2], -1, -2) + matrix[..., None, :, 2]


def inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of an affine transform M [2, 3] (crop -> source for alignment transforms)."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.concatenate([linear, -linear @ matrix[:, 2:]], axis=1)


def smooth_track(values: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along time of `values` [T, ...] (sigma in frames).

    Near the ends the kernel is renormalised over the frames that exist, so a track is neither
    pulled towards zero nor shifted. Offline processing sees the whole clip, so a symmetric
    filter removes landmark jitter without the lag of a causal (EMA / one-euro) filter.
    """
    values = np.asarray(values, np.float64)
    if sigma <= 0 or len(values) < 2:
        return values.copy()
    radius = max(1, math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    n = len(values)
    out = np.zeros_like(values)
    norm = np.zeros(n)
    for offset, weight in zip(offsets, kernel, strict=True):
        lo, hi = max(0, -offset), min(n, n - offset)
        out[lo:hi] += weight * values[lo + offset : hi + offset]
        norm[lo:hi] += weight
    return out / norm.reshape((n,) + (1,) * (values.ndim - 1))


def _hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def warp(image: np.ndarray, matrix: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Warp `image` [H, W, C] by M [2, 3] into an output of `size` (int or (height, width)).

    Shrinking warps are rendered k times larger and area-averaged down, since a bilinear warp
    alone aliases when a 200 px face becomes a 64 px crop. Borders replicate the edge pixels.
    """
    import cv2

    height, width = _hw(size)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    k = max(1, min(MAX_SUPERSAMPLING, math.floor(1.0 / scale))) if scale > 0 else 1
    # Output pixel i of the k-times grid lies at k * i + (k - 1) / 2 in the upsampled grid.
    big = np.asarray(matrix, np.float64) * k
    big[:, 2] += (k - 1) / 2
    out = cv2.warpAffine(
        image,
        big,
        (width * k, height * k),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if k > 1:
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA)
    return out
