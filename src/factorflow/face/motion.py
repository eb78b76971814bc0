"""Identity-free mouth motion: the driver's change from its own neutral, moved onto the target.

Both clips are normalised to a canonical head pose (`landmarks.normalise`). The driver's motion in
frame t is its canonical landmarks minus its neutral (its least-open frames), smoothed lightly in
time. It is carried into the target's canonical frame by the similarity between the two neutral
faces (rotation and inter-ocular scale) and by the ratio of their mouth widths (so an opening of
half the mouth's width stays half the target's mouth width).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factorflow.face.align import smooth_track, umeyama
from factorflow.face.landmarks import (
    MOUTH_CORNERS,
    RIGID,
    found,
    inner_lip_opening,
    interocular,
    neutral_shape,
    normalise,
)

__all__ = [
    "REST_OPEN",
    "SMOOTH_FRAMES",
    "Geometry",
    "Motion",
    "cap_opening",
    "close_rest",
    "driver_motion",
    "mouth_width",
]

SMOOTH_FRAMES = 0.7  # Gaussian sigma of the motion in time (frames): landmark jitter only
REST_OPEN = 0.05  # rest opening (gap / width) above the driver's at which the target is closed


@dataclass(frozen=True)
class Motion:
    """The driver's relative mouth motion, per frame, in the target's canonical frame."""

    delta: np.ndarray  # float [T, 478, 2]: 0 where the driver has no face
    driver_found: np.ndarray  # bool [T]
    scale: float  # mouth-width ratio applied


def mouth_width(landmarks: np.ndarray) -> np.ndarray:
    return np.linalg.norm(
        landmarks[..., MOUTH_CORNERS[0], :] - landmarks[..., MOUTH_CORNERS[1], :], axis=-1
    )


@dataclass(frozen=True)
class Geometry:
    """A clip's canonical landmarks, frame -> canonical similarities and neutral shape."""

    canonical: np.ndarray  # [T, 478, 2] (NaN: no face)
    to_canonical: np.ndarray  # [T, 2, 3]
    neutral: np.ndarray  # [478, 2]

    @classmethod
    def of(cls, landmarks: np.ndarray) -> Geometry:
        canonical, mats = normalise(landmarks)
        return cls(canonical, mats, neutral_shape(canonical))


def driver_motion(driver: Geometry, target: Geometry, max_scale: float = 1.35) -> Motion:
    hits = found(driver.canonical)
    delta = np.where(hits[:, None, None], driver.canonical - driver.neutral, 0.0)
    delta = smooth_track(delta, SMOOTH_FRAMES)
    fit = umeyama(driver.neutral[list(RIGID)], target.neutral[list(RIGID)])
    ratio_d = mouth_width(driver.neutral) / interocular(driver.neutral)
    ratio_t = mouth_width(target.neutral) / interocular(target.neutral)
    scale = float(np.clip(ratio_t / ratio_d, 1 / max_scale, max_scale))
    delta = scale * delta @ fit[:, :2].T
    delta = cap_opening(delta, target.neutral, inner_lip_opening(driver.canonical[hits]).max())
    delta = close_rest(delta, target.neutral, float(inner_lip_opening(driver.neutral)))
    return Motion(np.where(hits[:, None, None], delta, 0.0), hits, scale)


def cap_opening(delta: np.ndarray, neutral: np.ndarray, most: float) -> np.ndarray:
    """Scale down the frames whose motion would open the target's mouth wider than `most` (gap
    over width): a target whose rest mouth is already open (a smile showing teeth) must not be
    opened past anything the driver does."""
    moved = neutral[None] + delta
    opening = inner_lip_opening(moved)
    rest = float(inner_lip_opening(neutral))
    if rest >= most:
        factor = np.where(opening > rest, 0.0, 1.0)
    else:
        extra = np.maximum(opening - rest, 1e-9)
        factor = np.clip((most - rest) / extra, 0.0, 1.0)
    return delta * factor[:, None, None]


def close_rest(delta: np.ndarray, neutral: np.ndarray, closed: float) -> np.ndarray:
    """Motion [T, 478, 2] that also closes a target whose rest mouth is open (a smile showing
    teeth, a surprised face) where the driver's is closed.

    The closing is the driver's own opening motion run backwards: its least-squares direction
    per unit of opening gain, as much of it as brings the target's rest opening down to
    `closed` (the driver's rest opening), weighted per frame by 1 - gain / the largest gain.
    The output's opening is then a linear map of the driver's gain, from `closed` at the
    driver's rest to where it was at its widest."""
    rest = float(inner_lip_opening(neutral))
    gain = inner_lip_opening(neutral[None] + delta) - rest
    top = float(gain.max()) if len(gain) else 0.0
    if rest - closed < REST_OPEN or top <= 0:
        return delta
    up = gain > 0
    direction = np.einsum("t,tpk->pk", gain[up], delta[up]) / float((gain[up] ** 2).sum())
    amounts = np.linspace(0.0, 2.0 * (rest - closed), 81)
    reached = inner_lip_opening(neutral[None] - amounts[:, None, None] * direction)
    below = np.flatnonzero(reached <= closed)
    amount = amounts[below[0] if len(below) else int(np.argmin(reached))]
    weight = np.clip(1.0 - gain / top, 0.0, 1.0)
    return delta - (amount * weight)[:, None, None] * direction
