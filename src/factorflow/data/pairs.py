"""Training pairs for the mouth flow: two frames of one clip and their landmark geometry.

Item i of a `PairDataset` is frame t of clip c and its k-th partner frame j of the same clip
(i = (c * T + t) * partners + k), a pure function of i:

    own       frame t's lower-face crop under its own geometry          uint8 [3, S, S]
    own_mask  frame t's inner-lip mask in that crop                      uint8 [1, S, S]
    warped    frame t warped by the landmark warp to frame j's mouth     uint8 [3, S, S]
    new_mask  frame j's inner-lip mask, moved onto frame t's head pose   uint8 [1, S, S]
    target    frame j's crop (the answer)                                uint8 [3, S, S]

plus word, speaker and index (the clip) like every other item. Partners are drawn favouring
other mouth openings, so most pairs ask the flow to open or close a mouth, and only among frames
of one head pose (a similarity cannot undo a turned head). The landmarks are the face tool's
(`prepare` and `synth --landmarks` store them with each clip); no generator factor is read.
Frames smaller than the face tool's working size are upscaled first (`face_tool_scale`), at
training and at use time alike.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from factorflow.face.align import transform_points, warp
from factorflow.face.landmarks import RIGID, found, inner_lip_opening, interocular, upscale
from factorflow.face.motion import Geometry
from factorflow.face.render import MouthRenderer
from factorflow.face.warp import polygon_mask

__all__ = ["KEYS", "MAX_POSE_CHANGE", "ClipGeometry", "ClipSource", "PairDataset", "make_pair"]

# Pairs only between frames whose head pose differs by less than this (mean rigid-point offset in
# the canonical frame, inter-ocular distances).
MAX_POSE_CHANGE = 0.03
KEYS = ("own", "own_mask", "warped", "new_mask", "target")


@dataclass
class ClipGeometry:
    """What every pair of one clip shares: its (upscaled) frames, landmarks and geometry."""

    frames: np.ndarray  # uint8 [T, H, W, 3]
    landmarks: np.ndarray  # [T, 478, 2] in those pixels (NaN: no face)
    geometry: Geometry
    renderer: MouthRenderer
    usable: np.ndarray  # frames with a face
    opening: np.ndarray  # [T] inner-lip opening
    word: int
    speaker: int
    index: int

    def partners(self, t: int) -> np.ndarray:
        """Frames of the same head pose as frame t (t included)."""
        rigid = self.geometry.canonical[:, list(RIGID)]
        ok = np.flatnonzero(self.usable)
        iod = float(interocular(self.geometry.neutral))
        pose = np.abs(rigid[ok] - rigid[t]).mean((1, 2)) / iod
        return ok[pose < MAX_POSE_CHANGE]


# clip(c) -> (frames uint8 [T,H,W,3], landmarks [T,478,2], word, speaker, index of the clip read)
ClipSource = Callable[[int], tuple[np.ndarray, np.ndarray, int, int, int]]


class PairDataset(Dataset):
    def __init__(
        self,
        source: ClipSource,
        clips: int,
        frames: int,
        crop_size: int,
        partners: int = 4,
        cache_clips: int = 64,
    ) -> None:
        if clips < 1 or frames < 2:
            raise ValueError(f"pairs need clips of at least 2 frames, got {clips} x {frames}")
        self.source = source
        self.clips = clips
        self.frames = frames
        self.crop_size = crop_size
        self.partners = partners
        self.cache_clips = cache_clips
        self._cache: OrderedDict[int, ClipGeometry | None] = OrderedDict()
        self.clip_set = None  # the ClipDataset read, when made by `of`

    @classmethod
    def of(cls, clips, crop_size: int, partners: int = 4) -> PairDataset:
        """Pairs of a ClipDataset (or ShardClipDataset) opened with landmarks."""

        def source(c: int):
            actual, frames = clips.clip_frames(c)
            word, speaker = clips.labels(actual)
            landmarks = clips.clip_landmarks(actual)
            return frames.permute(0, 2, 3, 1).numpy(), landmarks, word, speaker, actual

        pairs = cls(source, len(clips), clips.frames, crop_size, partners)
        pairs.clip_set = clips
        return pairs

    @classmethod
    def of_arrays(
        cls, frames: list[np.ndarray], landmarks: np.ndarray, crop_size: int, partners: int = 4
    ) -> PairDataset:
        """Pairs of one clip held in memory (a target video's own frames: `--adapt-steps`)."""
        stack = np.stack(frames)
        return cls(lambda c: (stack, landmarks, -1, -1, 0), 1, len(stack), crop_size, partners)

    def __len__(self) -> int:
        return self.clips * self.frames * self.partners

    def _clip(self, c: int) -> ClipGeometry | None:
        if c in self._cache:
            self._cache.move_to_end(c)
            return self._cache[c]
        frames, landmarks, word, speaker, actual = self.source(c)
        frames, landmarks = upscale(frames, landmarks)
        usable = found(landmarks)
        clip = None
        if usable.sum() >= 2:
            geometry = Geometry.of(landmarks)
            renderer = MouthRenderer(geometry.neutral, painter=None, crop_size=self.crop_size)
            opening = inner_lip_opening(geometry.canonical)
            clip = ClipGeometry(
                frames, landmarks, geometry, renderer, usable, opening, word, speaker, actual
            )
        self._cache[c] = clip
        while len(self._cache) > self.cache_clips:
            self._cache.popitem(last=False)
        return clip

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"pair index {index} out of range for {len(self)} pairs")
        index %= len(self)
        c, rest = divmod(index, self.frames * self.partners)
        t, k = divmod(rest, self.partners)
        # A clip without two frames of one pose is replaced by the next one, deterministically.
        for step in range(self.clips):
            clip = self._clip((c + step) % self.clips)
            if clip is not None:
                pair = make_pair(clip, t, np.random.default_rng((index, step)))
                if pair is not None:
                    return pair
        raise ValueError(
            f"no clip of {self.clips} has two frames of one head pose with a face: "
            "the mouth flow needs clips with face-tool landmarks (prepare, or synth --landmarks)"
        )


def make_pair(clip: ClipGeometry, t: int, rng: np.random.Generator) -> dict | None:
    """The pair of frame t (or, without a face there, of the nearest usable frame) with a
    partner drawn by `rng`; None when the clip has no two frames of one pose."""
    ok = np.flatnonzero(clip.usable)
    i = int(ok[np.abs(ok - t).argmin()])
    near = clip.partners(i)
    if len(near) < 2:
        return None
    gap = np.abs(clip.opening[near] - clip.opening[i]) + 0.03
    j = int(rng.choice(near, p=gap / gap.sum()))
    geo, renderer, size = clip.geometry, clip.renderer, clip.renderer.crop_size
    crop_m = renderer.crop_transform(geo.to_canonical[i])
    inner = renderer.region.points[renderer.inner]
    delta = geo.canonical[j] - geo.neutral
    rendered = renderer.render(clip.frames[i], clip.landmarks[i], geo.to_canonical[i], delta)
    _, dst = renderer.geometry(clip.landmarks[i], geo.to_canonical[i], delta)
    target_m = renderer.crop_transform(geo.to_canonical[j])
    images = {
        "own": warp(clip.frames[i], crop_m, size),
        "own_mask": polygon_mask(transform_points(clip.landmarks[i, inner], crop_m), (size, size)),
        "warped": warp(rendered.frame, crop_m, size),
        "new_mask": polygon_mask(transform_points(dst[renderer.inner], crop_m), (size, size)),
        "target": warp(clip.frames[j], target_m, size),
    }
    item = {
        k: torch.from_numpy(np.ascontiguousarray(v.transpose(2, 0, 1) if v.ndim == 3 else v[None]))
        for k, v in images.items()
    }
    item.update(
        word=torch.tensor(clip.word, dtype=torch.long),
        speaker=torch.tensor(clip.speaker, dtype=torch.long),
        index=torch.tensor(clip.index, dtype=torch.long),
    )
    return item
