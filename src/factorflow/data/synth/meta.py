"""meta.json of a synthetic dataset: reading, writing, and re-rendering any clip from it exactly.

The format is documented in `factorflow.data.synth` (the package docstring).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from factorflow.data.synth.factors import MOUTH_FACTORS, Identity, Lighting, Pose
from factorflow.data.synth.render import render_clip
from factorflow.data.synth.words import SpeakingStyle

__all__ = [
    "FORMAT",
    "FPS",
    "MASK_LAYOUT",
    "SPLITS",
    "ClipMeta",
    "SpeakerMeta",
    "SynthMeta",
    "frame_path",
    "mask_path",
]

FORMAT = "factorflow-synth/1"
FPS = 25
SPLITS = ("train", "val", "test")
MASK_LAYOUT = "masks/{split}/{word}/{word}_{clip:05d}.npz: key 'masks', uint8 [T,H,W] in {0,1}"


def frame_path(split: str, word: str, clip: int, frame: int) -> str:
    return f"{split}/{word}/{word}_{clip:05d}_{frame:02d}.png"


def mask_path(split: str, word: str, clip: int) -> str:
    return f"masks/{split}/{word}/{word}_{clip:05d}.npz"


@dataclass(frozen=True)
class SpeakerMeta:
    split: str  # "train" (train and val clips) or "test" (held out)
    identity: Identity
    style: SpeakingStyle

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "identity": self.identity.to_dict(),
            "style": self.style.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeakerMeta:
        return cls(d["split"], Identity.from_dict(d["identity"]), SpeakingStyle(**d["style"]))


@dataclass(frozen=True, eq=False)
class ClipMeta:
    """One clip: who says which word, at which pose and light, with which mouth per frame.

    `mouth` is [T,5] float64 (MOUTH_FACTORS); `files` are T frame paths relative to the dataset
    root; `mask` is the relative path of the clip's masks file."""

    split: str
    word: str
    clip: int
    speaker: str
    pose: Pose
    lighting: Lighting
    mouth: np.ndarray
    files: tuple[str, ...]
    mask: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "word": self.word,
            "clip": self.clip,
            "speaker": self.speaker,
            "pose": self.pose.to_dict(),
            "lighting": self.lighting.to_dict(),
            "mouth": self.mouth.tolist(),
            "files": list(self.files),
            "mask": self.mask,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipMeta:
        mouth = np.asarray(d["mouth"], dtype=np.float64)
        if mouth.ndim != 2 or mouth.shape[1] != len(MOUTH_FACTORS):
            raise ValueError(
                f"clip {d.get('word')}/{d.get('clip')}: mouth has shape {mouth.shape}, "
                f"expected [T, {len(MOUTH_FACTORS)}]"
            )
        return cls(
            split=d["split"],
            word=d["word"],
            clip=int(d["clip"]),
            speaker=d["speaker"],
            pose=Pose.from_dict(d["pose"]),
            lighting=Lighting.from_dict(d["lighting"]),
            mouth=mouth,
            files=tuple(d["files"]),
            mask=d["mask"],
        )


@dataclass
class SynthMeta:
    """The parsed meta.json of a synthetic dataset, and exact re-rendering from it."""

    size: int
    clip_frames: int  # frames per clip ("frames" in meta.json)
    seed: int
    words: list[str]
    speakers: dict[str, SpeakerMeta]
    all_clips: list[ClipMeta]
    settings: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    fps: int = FPS

    def __post_init__(self) -> None:
        self._index = {(c.split, c.word, c.clip): c for c in self.all_clips}

    @classmethod
    def load(cls, root: str | os.PathLike) -> SynthMeta:
        """Parse ROOT/meta.json (ROOT as written by `generate`)."""
        path = Path(root) / "meta.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no meta.json (expected a `factorflow synth` output)")
        with open(path) as f:
            d = json.load(f)
        if d.get("format") != FORMAT:
            raise ValueError(f"{path}: format {d.get('format')!r}, expected {FORMAT!r}")
        return cls(
            size=int(d["size"]),
            clip_frames=int(d["frames"]),
            seed=int(d["seed"]),
            words=list(d["words"]),
            speakers={k: SpeakerMeta.from_dict(v) for k, v in d["speakers"].items()},
            all_clips=[ClipMeta.from_dict(c) for c in d["clips"]],
            settings=dict(d.get("settings", {})),
            root=Path(root),
            fps=int(d["fps"]),
        )

    def clips(self, split: str | None = None) -> list[ClipMeta]:
        """Clips of one split ("train", "val", "test"), or all clips when split is None."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {SPLITS}")
        return [c for c in self.all_clips if split is None or c.split == split]

    def clip(self, split: str, word: str, clip_index: int) -> ClipMeta:
        try:
            return self._index[(split, word, int(clip_index))]
        except KeyError:
            raise ValueError(
                f"no clip {split}/{word}/{clip_index} in this dataset "
                f"(words {self.words}, splits {SPLITS})"
            ) from None

    def identity(self, speaker: str) -> Identity:
        try:
            return self.speakers[speaker].identity
        except KeyError:
            raise ValueError(
                f"unknown speaker {speaker!r}: expected one of {sorted(self.speakers)}"
            ) from None

    def render(self, clip: ClipMeta, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(frames uint8 [T,H,W,3], masks uint8 [T,H,W]) of a clip; at the dataset size they equal
        the files on disk bit for bit."""
        return render_clip(
            self.identity(clip.speaker), clip.pose, clip.lighting, clip.mouth, size or self.size
        )

    def frames(self, clip: ClipMeta, size: int | None = None) -> np.ndarray:
        """uint8 [T,H,W,3], re-rendered."""
        return self.render(clip, size)[0]

    def masks(self, clip: ClipMeta, size: int | None = None) -> np.ndarray:
        """uint8 [T,H,W] in {0,1}: the mouth region (lips, slightly grown) per frame."""
        return self.render(clip, size)[1]

    def render_reenactment(
        self, target: ClipMeta, driver: ClipMeta, size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth of reenactment: the target speaker's identity with the target clip's pose
        and lighting, saying the driver clip's mouth trajectory (relative mouth factors, applied on
        the target's own mouth). -> (frames uint8 [T_driver,H,W,3], masks uint8 [T_driver,H,W])."""
        return render_clip(
            self.identity(target.speaker),
            target.pose,
            target.lighting,
            driver.mouth,
            size or self.size,
        )

    def to_json(self) -> str:
        """meta.json text, one speaker or clip per line; same meta -> same bytes."""
        header = {
            "format": FORMAT,
            "size": self.size,
            "frames": self.clip_frames,
            "fps": self.fps,
            "seed": self.seed,
            "settings": self.settings,
            "words": sorted(self.words),
            "mouth_factors": list(MOUTH_FACTORS),
            "mask_layout": MASK_LAYOUT,
        }
        compact = {"separators": (",", ":")}
        speakers = ",\n".join(
            f"  {json.dumps(k)}:{json.dumps(v.to_dict(), **compact)}"
            for k, v in sorted(self.speakers.items())
        )
        clips = ",\n".join(f"  {json.dumps(c.to_dict(), **compact)}" for c in self.all_clips)
        head = json.dumps(header, indent=1)[:-2]
        return f'{head},\n "speakers": {{\n{speakers}\n }},\n "clips": [\n{clips}\n ]\n}}\n'
