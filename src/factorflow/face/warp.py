"""A landmark-driven warp of the lower face at the frame's own resolution.

The region is the part of the face mesh around the mouth and chin (an ellipse about the mouth in
inter-ocular units). Its mesh points move by the driver's motion, faded to zero towards the
ellipse's edge, so the warp is the identity where the region meets the untouched frame. The
region is cut into the Face Mesh's own triangles and warped piecewise-affinely in one
`cv2.remap`; the hole between the inner lips (the mouth interior, which a closed mouth does not
show) is what the mouth flow paints.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from factorflow.face.landmarks import (
    LEFT_EYE,
    MOUTH_CORNERS,
    RIGHT_EYE,
)

__all__ = [
    "FADE",
    "REGION_AXES",
    "Region",
    "crop_matrix",
    "face_axes",
    "mesh_triangles",
    "mouth_region",
    "piecewise_warp",
    "polygon_mask",
]

# Ellipse about the mouth centre, in inter-ocular distances: half-width, up, down.
REGION_AXES = (0.66, 0.34, 0.85)
FADE = 0.6  # motion fades from full at radius 1 - FADE to zero at radius 1


@functools.cache
def mesh_triangles() -> np.ndarray:
    """int [F, 3]: the triangles of MediaPipe's face mesh tessellation."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    triangles = {
        tuple(sorted((a, b, c)))
        for a in neighbours
        for b in neighbours[a]
        for c in neighbours[a] & neighbours[b]
    }
    return np.array(sorted(triangles), np.int64)


@dataclass(frozen=True)
class Region:
    """The warped region of one face: mesh points, their motion weights, triangles."""

    points: np.ndarray  # int [P]: landmark indices in the region
    weights: np.ndarray  # float [P]: 1 near the mouth, 0 on the region's edge
    triangles: np.ndarray  # int [F, 3]: indices into `points`


def face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(mouth centre, unit eye-line direction, inter-ocular distance) of landmarks [478, 2]."""
    left = landmarks[list(LEFT_EYE)].mean(0)
    right = landmarks[list(RIGHT_EYE)].mean(0)
    iod = float(np.linalg.norm(right - left))
    return landmarks[list(MOUTH_CORNERS)].mean(0), (right - left) / iod, iod


def mouth_region(neutral: np.ndarray) -> Region:
    """The region of a face given its neutral landmarks [478, 2] (any similarity frame)."""
    centre, u, iod = face_axes(neutral[:468])
    v = np.array([-u[1], u[0]])  # image down
    rel = (neutral[:468] - centre) / iod
    dx, dy = rel @ u, rel @ v
    ax, up, down = REGION_AXES
    radius = np.sqrt((dx / ax) ** 2 + (dy / np.where(dy < 0, up, down)) ** 2)
    tri = mesh_triangles()
    inside = radius <= 1.0
    keep = tri[inside[tri].all(1)]
    points = np.unique(keep)
    lookup = np.full(468, -1)
    lookup[points] = np.arange(len(points))
    weight = np.clip((1.0 - radius[points]) / FADE, 0.0, 1.0)
    weight = weight * weight * (3 - 2 * weight)  # smoothstep
    return Region(points, weight, lookup[keep])


def _affines(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle the affine [F, 2, 3] mapping dst corners to src corners; bool [F] valid.

    Solved in closed form (Cramer's rule on the corners' offsets from the first corner): a
    batched LAPACK solve of a few hundred 3x3 systems costs more than the rest of the warp."""
    d1, d2 = dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]  # [F, 2]
    s1, s2 = src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]  # the 3x3 corner matrix's determinant
    ok = np.abs(det) > 1e-3
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # linear part L with L @ d1 = s1, L @ d2 = s2: L = [s1 s2] @ inverse([d1 d2])
    a = (s1 * d2[:, 1:2] - s2 * d1[:, 1:2]) * inv[:, None]  # [F, 2]: L[:, 0]
    b = (s2 * d1[:, 0:1] - s1 * d2[:, 0:1]) * inv[:, None]  # [F, 2]: L[:, 1]
    t = src[:, 0] - a * dst[:, 0, 0:1] - b * dst[:, 0, 1:2]
    mats = np.stack([a, b, t], -1) * ok[:, None, None]  # [F, 2, 3]
    return mats, ok


def piecewise_warp(
    image: np.ndarray, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Warp `image` so that points `src` [P, 2] land on `dst` [P, 2], inside the triangles.

    Returns (patch [h, w, C], covered bool [h, w], (y0, x0)): the warped pixels of the bounding
    box of the dst triangles (clipped to the image) and which of them a triangle covers."""
    import cv2

    height, width = image.shape[:2]
    lo = np.floor(dst.min(0)).astype(int) - 1
    hi = np.ceil(dst.max(0)).astype(int) + 2
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], width), min(hi[1], height)
    h, w = max(y1 - y0, 1), max(x1 - x0, 1)
    mats, ok = _affines(src[triangles], dst[triangles])
    # Pixels no triangle covers take one more entry, the identity, so one gather makes the maps.
    none = len(mats)
    ids = np.full((h, w), none, np.int32)
    shift = 4
    local = np.round((dst - [x0, y0]) * (1 << shift)).astype(np.int32)
    for k in np.flatnonzero(ok):
        cv2.fillConvexPoly(ids, local[triangles[k]], int(k), lineType=cv2.LINE_8, shift=shift)
    table = np.empty((none + 1, 6), np.float32)
    table[:none] = mats.reshape(none, 6)
    table[none] = (1, 0, 0, 0, 1, 0)
    covered = ids != none
    m = table[ids]  # [h, w, 6]
    xs = np.arange(x0, x0 + w, dtype=np.float32)[None]
    ys = np.arange(y0, y0 + h, dtype=np.float32)[:, None]
    map_x = m[..., 0] * xs + m[..., 1] * ys + m[..., 2]
    map_y = m[..., 3] * xs + m[..., 4] * ys + m[..., 5]
    patch = cv2.remap(
        image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if patch.ndim == 2:
        patch = patch[..., None]
    return patch, covered, (y0, x0)


def polygon_mask(points: np.ndarray, shape: tuple[int, int], offset=(0, 0)) -> np.ndarray:
    """uint8 [H, W] 0/1 filled polygon of `points` [K, 2] (x, y) minus offset (y0, x0)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    pts = np.round((points - [offset[1], offset[0]]) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask


def crop_matrix(centre: np.ndarray, u: np.ndarray, side: float, size: int) -> np.ndarray:
    """Similarity [2, 3] frame -> a size x size crop of `side` pixels about `centre`, rotated so
    the eye line `u` is horizontal."""
    s = size / side
    rot = np.array([[u[0], u[1]], [-u[1], u[0]]]) * s
    t = np.array([size / 2 - 0.5, size / 2 - 0.5]) - rot @ centre
    return np.concatenate([rot, t[:, None]], 1)
