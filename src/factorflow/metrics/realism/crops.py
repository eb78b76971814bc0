"""Mouth crops at the mouth flow's own alignment, shared by the realism judges.

The crop is the one the flow sees (`face.render`): CROP_SIDE_IOD inter-ocular distances wide,
centred CROP_DOWN_IOD below the mouth centre, the eye line horizontal, `size` pixels square
(64 for the shipped flow). Here it is taken from each frame's own landmarks.
"""

from __future__ import annotations

import numpy as np

from factorflow.face.align import transform_points, warp
from factorflow.face.landmarks import found, inner_lip_opening
from factorflow.face.render import CROP_DOWN_IOD, CROP_SIDE_IOD
from factorflow.face.warp import crop_matrix, face_axes

__all__ = [
    "CROP_SIZE",
    "check_inputs",
    "crop_landmarks",
    "crop_transform",
    "grey",
    "mouth_crops",
    "opening",
]

CROP_SIZE = 64


def crop_transform(landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Similarity [2, 3]: frame -> the size x size mouth crop of landmarks [478, 2]."""
    centre, u, iod = face_axes(landmarks)
    v = np.array([-u[1], u[0]])  # image down
    return crop_matrix(centre + CROP_DOWN_IOD * iod * v, u, CROP_SIDE_IOD * iod, size)


def mouth_crops(
    frames: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """(crops uint8 [T, size, size, 3], found bool [T]) of frames [T,H,W,3] with landmarks
    [T, 478, 2] (NaN rows where no face: their crops are zeros)."""
    check_inputs(frames, landmarks)
    ok = found(landmarks)
    crops = np.zeros((len(frames), size, size, 3), np.uint8)
    for t in np.flatnonzero(ok):
        crops[t] = warp(np.ascontiguousarray(frames[t]), crop_transform(landmarks[t], size), size)
    return crops, ok


def crop_landmarks(landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Landmarks [T, 478, 2] mapped into each frame's own mouth crop (NaN rows kept)."""
    out = np.full(landmarks.shape, np.nan)
    for t in np.flatnonzero(found(landmarks)):
        out[t] = transform_points(
            landmarks[t].astype(np.float64), crop_transform(landmarks[t], size)
        )
    return out


def opening(landmarks: np.ndarray) -> np.ndarray:
    """[T] inner-lip gap over mouth width (NaN where no face)."""
    return inner_lip_opening(np.asarray(landmarks, np.float64))


def check_inputs(frames: np.ndarray, landmarks: np.ndarray) -> None:
    """Raise on frames that are not uint8 [T,H,W,3] or landmarks that are not [T, 478, 2]."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T,H,W,3], got {frames.dtype} {frames.shape}")
    if landmarks.ndim != 3 or landmarks.shape[0] != len(frames) or landmarks.shape[2] != 2:
        raise ValueError(
            f"expected landmarks [{len(frames)}, 478, 2] for {len(frames)} frames, "
            f"got {landmarks.shape}"
        )


def grey(crops: np.ndarray) -> np.ndarray:
    """float64 [..., S, S] luma of uint8 crops [..., S, S, 3]."""
    return crops.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
