"""Training pairs for the mouth flow from a `factorflow prepare` folder (real clips only).

For every prepared clip (face crops + MediaPipe landmarks in crop pixels), frames i and j of the
same clip make a pair: frame i's lower-face crop under its own geometry, frame i warped by the
landmark warp to frame j's mouth shape (the condition), and frame j's crop (the answer). Partners
j are drawn favouring different mouth openings, so most pairs ask the flow to open or close a
mouth. Still photos never enter: `prepare` output of videos only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from factorflow.face.align import transform_points, warp
from factorflow.face.landmarks import RIGID, found, inner_lip_opening, interocular
from factorflow.face.motion import Geometry
from factorflow.face.render import MouthRenderer
from factorflow.face.warp import polygon_mask

log = logging.getLogger(__name__)
# Pairs only between frames whose head pose differs by less than this (mean rigid-point offset in
# the canonical frame, inter-ocular distances): a similarity cannot undo turning the head.
MAX_POSE_CHANGE = 0.03


def prepared_clips(folder: Path) -> list[Path]:
    clips = sorted(Path(folder).glob("*/*/*.npz"))
    if not clips:
        raise FileNotFoundError(f"{folder} holds no prepared clips (*/WORD/WORD_00001.npz)")
    return clips


def clip_pairs(npz: Path, size: int, partners: int, rng: np.random.Generator) -> dict:
    """The pairs of one prepared clip (face crops and their landmarks)."""
    from PIL import Image

    data = np.load(npz)
    landmarks = data["landmarks_crop"].astype(np.float64)
    stem = npz.with_suffix("").name
    files = [npz.parent / f"{stem}_{t:02d}.png" for t in range(len(landmarks))]
    frames = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return frame_pairs(frames, landmarks, size, partners, rng)


def frame_pairs(
    frames: list[np.ndarray], landmarks: np.ndarray, size: int, partners: int, rng
) -> dict:
    """Pairs of frames of one clip of one face, in any pixel frame (prepared crops or a video's
    own frames) with MediaPipe landmarks [T,478,2] in the same pixels (NaN where none was found).
    Empty when no two frames of one head pose are found."""
    geo = Geometry.of(landmarks)
    ok = np.flatnonzero(found(geo.canonical))
    renderer = MouthRenderer(geo.neutral, painter=None, crop_size=size)
    opening = inner_lip_opening(geo.canonical)
    crops, masks, mats = {}, {}, {}
    for t in ok:
        mats[t] = renderer.crop_transform(geo.to_canonical[t])
        crops[t] = warp(frames[t], mats[t], size)
        src = landmarks[t, renderer.region.points]
        masks[t] = polygon_mask(transform_points(src[renderer.inner], mats[t]), (size, size))
    out = {k: [] for k in ("own", "own_mask", "warped", "new_mask", "target")}
    rigid = geo.canonical[:, list(RIGID)]
    iod = float(interocular(geo.neutral))
    for i in ok:
        pose = np.abs(rigid[ok] - rigid[i]).mean((1, 2)) / iod
        near = ok[pose < MAX_POSE_CHANGE]
        if len(near) < 2:
            continue
        gap = np.abs(opening[near] - opening[i]) + 0.03
        chosen = rng.choice(near, size=min(partners, len(near)), replace=False, p=gap / gap.sum())
        for j in chosen:
            delta = geo.canonical[j] - geo.neutral
            rendered = renderer.render(frames[i], landmarks[i], geo.to_canonical[i], delta)
            _, dst = renderer.geometry(landmarks[i], geo.to_canonical[i], delta)
            out["own"].append(crops[i])
            out["own_mask"].append(masks[i])
            out["warped"].append(warp(rendered.frame, mats[i], size))
            out["new_mask"].append(
                polygon_mask(transform_points(dst[renderer.inner], mats[i]), (size, size))
            )
            out["target"].append(crops[j])
    return {k: np.stack(v) for k, v in out.items()} if out["own"] else {}


def build_pairs(folder: Path, size: int, partners: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """uint8 arrays: own/warped/target [N,S,S,3], own_mask/new_mask [N,S,S]."""
    rng = np.random.default_rng(seed)
    parts = []
    for npz in prepared_clips(folder):
        try:
            pairs = clip_pairs(npz, size, partners, rng)
        except ValueError as exc:
            log.warning("%s skipped: %s", npz, exc)
            continue
        if pairs:
            parts.append(pairs)
    if not parts:
        raise ValueError(f"no usable clip in {folder}")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
