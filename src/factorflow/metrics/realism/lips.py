"""Lip preservation: how much of the lip band still looks like the target's own lips.

In each frame's mouth crop (`crops`), the lip band lies between the outer and the inner lip
contours of the landmarks, and a skin ring around it (the outer lips grown RING_SCALE times about
the mouth centre, less the lips). Colours are CIELAB. The target's own frames give three
reference colours: its lips (median of its bands), its skin (median of its rings), a dark mouth
interior (DARK) and, where its mouth opens, its own interior (the median inside its inner lips).
Every band pixel is given to the nearest of these (lightness weighted L_WEIGHT, so shading counts
less than hue), and:
- lip area: band pixels that look like the target's lips, over the same in the target's own frames
  at the nearest opening (1 = lips kept; a mouth painted with skin or cut to a dark hole ~0);
- lip contrast: the colour distance (Delta E) between the band's and the ring's medians, over the
  target's own (near 0 when the lips have the skin's colour; a dark hole raises it, so lip area
  is the figure that judges a hole).
"""

from __future__ import annotations

import numpy as np

from factorflow.face.landmarks import INNER_CONTOUR, MOUTH_CORNERS, OUTER_LIPS
from factorflow.face.warp import polygon_mask
from factorflow.metrics.realism.crops import CROP_SIZE, crop_landmarks, mouth_crops, opening

__all__ = [
    "DARK",
    "KEPT",
    "L_WEIGHT",
    "OPEN",
    "RING_SCALE",
    "contrast",
    "frame_colours",
    "lab",
    "lip_figures",
    "lip_pixels",
    "lip_preservation",
    "references",
    "regions",
]

RING_SCALE = 1.5
L_WEIGHT = 0.5
DARK = np.array([15.0, 8.0, 4.0])  # CIELAB of a mouth interior in shadow
OPEN = 0.1  # inner-lip gap / mouth width above which a mouth counts as open
KEPT = 0.7  # lip area ratio a frame needs for its lips to count as kept


def lab(crops: np.ndarray) -> np.ndarray:
    """float [..., 3] CIELAB (L 0-100, a and b about 0) of uint8 RGB crops [..., 3]."""
    import cv2

    flat = crops.reshape(-1, 1, 3).astype(np.float32) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).reshape(crops.shape).astype(np.float64)


def regions(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """bool [size, size] masks "band", "ring", "inside" of crop-space landmarks [478, 2]."""
    outer, inner = landmarks[list(OUTER_LIPS)], landmarks[list(INNER_CONTOUR)]
    centre = landmarks[list(MOUTH_CORNERS)].mean(0)
    shape = (size, size)
    outer_m = polygon_mask(outer, shape).astype(bool)
    inside = polygon_mask(inner, shape).astype(bool)
    grown = polygon_mask(centre + RING_SCALE * (outer - centre), shape).astype(bool)
    return {"band": outer_m & ~inside, "ring": grown & ~outer_m, "inside": inside}


def frame_colours(frames: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE) -> list:
    """Per frame, None (no face) or (Lab crop [S,S,3], regions) of frames [T,H,W,3]."""
    crops, ok = mouth_crops(frames, landmarks, size)
    local = crop_landmarks(landmarks, size)
    return [(lab(crops[t]), regions(local[t], size)) if ok[t] else None for t in range(len(ok))]


def references(own: list, openings: np.ndarray) -> np.ndarray:
    """[K, 3] Lab of the lips, the skin, DARK and, where the target's mouth opens (`openings`
    [R] >= OPEN), its own interior, from the target's own `frame_colours`."""
    rows = [(r, o) for r, o in zip(own, openings, strict=True) if r is not None]
    if not rows:
        raise ValueError("no target frame with a face to take the lips' colour from")
    median = lambda key: np.median(np.concatenate([c[m[key]] for (c, m), _ in rows]), 0)  # noqa: E731
    refs = [median("band"), median("ring"), DARK]
    inside = [c[m["inside"]] for (c, m), o in rows if o >= OPEN and m["inside"].any()]
    if inside:
        refs.append(np.median(np.concatenate(inside), 0))
    return np.stack(refs)


def lip_pixels(colours: np.ndarray, band: np.ndarray, refs: np.ndarray) -> int:
    """How many band pixels of a Lab crop are nearest the lips' reference colour."""
    weight = np.array([L_WEIGHT, 1.0, 1.0])
    d = (((colours[band][:, None, :] - refs[None]) * weight) ** 2).sum(-1)
    return int((d.argmin(1) == 0).sum())


def contrast(colours: np.ndarray, masks: dict[str, np.ndarray]) -> float:
    """Delta E between the median colours of the band and of the ring."""
    if not masks["band"].any() or not masks["ring"].any():
        return float("nan")
    band, ring = np.median(colours[masks["band"]], 0), np.median(colours[masks["ring"]], 0)
    return float(np.linalg.norm(band - ring))


def lip_figures(rows: list, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([T] lip pixels, [T] lip contrast) of `frame_colours` rows (NaN where no face)."""
    area, con = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for t, row in enumerate(rows):
        if row is not None:
            area[t] = lip_pixels(row[0], row[1]["band"], refs)
            con[t] = contrast(*row)
    return area, con


def lip_preservation(
    frames: np.ndarray,
    landmarks: np.ndarray,
    target_frames: np.ndarray,
    target_landmarks: np.ndarray,
    size: int = CROP_SIZE,
    neighbours: int = 5,
) -> dict:
    """Lips of an output [T,H,W,3] against the target's own [R,H',W',3] (landmarks [T|R,478,2],
    the output's own: NaN rows where no face).

    -> {"lip_area_ratio": median over frames, "lips_kept": share of open frames (all frames when
    none is open) whose ratio is >= KEPT, "lip_contrast_ratio": median, "open_frames": count}."""
    own = frame_colours(target_frames, target_landmarks, size)
    refs = references(own, opening(target_landmarks))
    own_area, own_contrast = lip_figures(own, refs)
    ok_own = np.isfinite(own_area)
    own_open, own_area, own_contrast = (
        opening(target_landmarks)[ok_own],
        own_area[ok_own],
        own_contrast[ok_own],
    )
    area, con = lip_figures(frame_colours(frames, landmarks, size), refs)
    out_open = opening(landmarks)
    ok = np.flatnonzero(np.isfinite(area))
    if not len(ok):
        raise ValueError(f"no output frame with a face (checked {len(frames)})")
    k = min(neighbours, len(own_area))
    area_ratio, contrast_ratio = np.empty(len(ok)), np.empty(len(ok))
    for i, t in enumerate(ok):
        near = np.argsort(np.abs(own_open - out_open[t]))[:k]
        area_ratio[i] = area[t] / max(np.median(own_area[near]), 1.0)
        contrast_ratio[i] = con[t] / max(np.median(own_contrast[near]), 1e-6)
    is_open = out_open[ok] >= OPEN
    judged = area_ratio[is_open] if is_open.any() else area_ratio
    return {
        "lip_area_ratio": float(np.median(area_ratio)),
        "lips_kept": float(np.mean(judged >= KEPT)),
        "lip_contrast_ratio": float(np.nanmedian(contrast_ratio)),
        "open_frames": int(is_open.sum()),
    }
