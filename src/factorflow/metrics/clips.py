"""Held-out clips for `evaluate`: a split's frames, masks and labels, and the (target, driver)
pairs drawn from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from factorflow.data.readers import load_image
from factorflow.data.synth import ClipMeta, SynthMeta

__all__ = [
    "MIN_PAIRS",
    "ClipSet",
    "clip_name",
    "default_pairs",
    "load_clips",
    "make_pairs",
    "spread_indices",
]


@dataclass
class ClipSet:
    """Clips of one split, loaded: frames uint8 [N,T,3,H,W], masks bool [N,T,H,W], mouth factors
    float [N,T,F], word ids [N] (into the dataset's sorted words), speaker ids [N] (into this set's
    sorted speakers)."""

    clips: list[ClipMeta]
    frames: Tensor
    masks: Tensor
    mouth: Tensor
    words: Tensor
    speakers: Tensor


def load_clips(meta: SynthMeta, split: str) -> ClipSet:
    """Read a split's frames (PNG) and masks (npz) from disk."""
    clips = meta.clips(split)
    if not clips:
        raise ValueError(f"{meta.root}: the {split} split has no clips")
    frames, masks = [], []
    for clip in clips:
        frames.append(np.stack([load_image(meta.root / f) for f in clip.files]))
        with np.load(meta.root / clip.mask) as npz:
            masks.append(npz["masks"])
    lengths = {len(f) for f in frames}
    if len(lengths) != 1:
        raise ValueError(f"{meta.root}: {split} clips differ in length {sorted(lengths)}")
    word_id = {w: i for i, w in enumerate(meta.words)}
    speaker_id = {s: i for i, s in enumerate(sorted({c.speaker for c in clips}))}
    return ClipSet(
        clips=clips,
        frames=torch.from_numpy(np.stack(frames)).permute(0, 1, 4, 2, 3).contiguous(),
        masks=torch.from_numpy(np.stack(masks)).bool(),
        mouth=torch.from_numpy(np.stack([c.mouth for c in clips])).float(),
        words=torch.tensor([word_id[c.word] for c in clips]),
        speakers=torch.tensor([speaker_id[c.speaker] for c in clips]),
    )


MIN_PAIRS = 96  # EVALUATION.md section 5: at least 96 pairs on the benchmark


def default_pairs(clips: list[ClipMeta]) -> int:
    """Every test clip as a driver once, and at least `MIN_PAIRS` pairs (fewer only when the split
    has fewer cross-speaker pairs)."""
    speakers = [c.speaker for c in clips]
    candidates = sum(1 for a in speakers for b in speakers if a != b)
    return min(max(len(clips), MIN_PAIRS), candidates)


def make_pairs(clips: list[ClipMeta], n: int | None = None, seed: int = 0) -> list[tuple[int, int]]:
    """`n` distinct (target index, driver index) pairs of clips with different speakers.

    Drivers go through the clips in a seeded order, so with n >= the number of clips every clip
    drives at least once (n = the number of clips: exactly once); each driver's target is a
    random clip of another speaker not yet paired with it. n=None: `default_pairs`.
    """
    targets_of = {
        d: [t for t, target in enumerate(clips) if target.speaker != driver.speaker]
        for d, driver in enumerate(clips)
    }
    available = sum(len(v) for v in targets_of.values())
    n = default_pairs(clips) if n is None else n
    if n < 1 or n > available:
        raise ValueError(
            f"pairs={n}: expected 1..{available} (test clip pairs with different speakers)"
        )
    rng = np.random.default_rng(seed)
    order = [d for d in rng.permutation(len(clips)).tolist() if targets_of[d]]
    for d in order:
        rng.shuffle(targets_of[d])
    pairs: list[tuple[int, int]] = []
    rounds = 0
    while len(pairs) < n:
        for d in order:
            if rounds < len(targets_of[d]) and len(pairs) < n:
                pairs.append((targets_of[d][rounds], d))
        rounds += 1
    return pairs


def spread_indices(n: int, k: int) -> Tensor:
    """k indices spread evenly over range(n) (all of them when k >= n)."""
    return torch.linspace(0, n - 1, min(n, k)).round().long().unique()


def clip_name(clip: ClipMeta) -> str:
    return f"{clip.split}/{clip.word}/{clip.clip:05d} ({clip.speaker})"
