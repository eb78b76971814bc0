"""Temporal stability: frame-to-frame change of the mouth beyond what the driver's motion explains.

Per frame t, the change of the mouth region between crops t-1 and t (`crops`; the outer lips
grown REGION_SCALE times about the mouth centre, in both frames) is the mean absolute luma
difference over the mean gradient magnitude: about how far the mouth's edges moved, in crop
pixels, whatever the face's contrast. The frames where the driver's inner-lip opening changes
least (its lower half of |opening change|) are quiet: there, every change is beyond what the
driver's opening explains. The ratio is the output's median change on the quiet frames over the
driver's own on the same frames: about 1 for a real clip, far above for flicker or noise, near 0
for a frozen mouth. `moving_ratio` is the same on the other frames (a frozen mouth: near 0).
"""

from __future__ import annotations

import numpy as np

from factorflow.face.landmarks import MOUTH_CORNERS, OUTER_LIPS
from factorflow.face.warp import polygon_mask
from factorflow.metrics.realism.crops import CROP_SIZE, crop_landmarks, grey, mouth_crops, opening

__all__ = ["REGION_SCALE", "gradient", "mouth_change", "region", "temporal_stability"]

REGION_SCALE = 1.6


def region(landmarks: np.ndarray, size: int) -> np.ndarray:
    """bool [size, size]: the mouth region of crop-space landmarks [478, 2]."""
    lips = landmarks[list(OUTER_LIPS)]
    centre = landmarks[list(MOUTH_CORNERS)].mean(0)
    return polygon_mask(centre + REGION_SCALE * (lips - centre), (size, size)).astype(bool)


def gradient(image: np.ndarray) -> np.ndarray:
    """[S, S] gradient magnitude of a float image [S, S] (central differences)."""
    gy, gx = np.gradient(image)
    return np.hypot(gx, gy)


def mouth_change(frames: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """[T] change of the mouth region from frame t-1 to t (NaN at t = 0 and where either frame
    has no face), of frames uint8 [T,H,W,3] with landmarks [T, 478, 2]."""
    crops, ok = mouth_crops(frames, landmarks, size)
    luma, local = grey(crops), crop_landmarks(landmarks, size)
    out = np.full(len(frames), np.nan)
    for t in np.flatnonzero(ok[1:] & ok[:-1]) + 1:
        mask = region(local[t - 1], size) | region(local[t], size)
        edges = 0.5 * (gradient(luma[t - 1]) + gradient(luma[t]))[mask].mean()
        out[t] = np.abs(luma[t] - luma[t - 1])[mask].mean() / max(edges, 1e-6)
    return out


def temporal_stability(
    frames: np.ndarray,
    landmarks: np.ndarray,
    driver_frames: np.ndarray,
    driver_landmarks: np.ndarray,
    size: int = CROP_SIZE,
) -> dict:
    """An output [T,H,W,3] against its driver [T,H',W',3], frame for frame (landmarks
    [T, 478, 2] each, NaN rows where no face).

    -> {"temporal_ratio": quiet frames, "moving_ratio": the other frames, "output_change" and
    "driver_change": their medians on the quiet frames}."""
    if len(frames) != len(driver_frames):
        raise ValueError(f"output has {len(frames)} frames, driver {len(driver_frames)}")
    out, own = (
        mouth_change(frames, landmarks, size),
        mouth_change(driver_frames, driver_landmarks, size),
    )
    step = np.abs(np.diff(opening(driver_landmarks), prepend=np.nan))
    ok = np.isfinite(out) & np.isfinite(own) & np.isfinite(step)
    if ok.sum() < 4:
        raise ValueError(f"need 4 frame pairs with a face in output and driver, got {ok.sum()}")
    quiet = ok & (step <= np.median(step[ok]))
    moving = ok & ~quiet
    ratio = lambda m: float(np.median(out[m]) / max(np.median(own[m]), 1e-9))  # noqa: E731
    return {
        "temporal_ratio": ratio(quiet),
        "moving_ratio": ratio(moving) if moving.any() else float("nan"),
        "output_change": float(np.median(out[quiet])),
        "driver_change": float(np.median(own[quiet])),
    }
