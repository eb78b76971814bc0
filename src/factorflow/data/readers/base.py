"""The clip model shared by every reader: an index of `ClipRef`s built by listing files, and
frames decoded lazily when a clip is asked for."""

from __future__ import annotations

import contextlib
import os
import tokenize
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from factorflow.data.video_io import UnreadableMediaError, read_video, video_info

__all__ = [
    "LANDMARKS_KEY",
    "NPY_ERRORS",
    "Clip",
    "ClipRef",
    "Reader",
    "image_size",
    "landmarks_file",
    "load_image",
    "opened_image",
    "rgb8",
]

# What numpy raises on a damaged .npy/.npz (it parses a header as Python: a SyntaxError).
NPY_ERRORS = (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError)


@dataclass
class Clip:
    """One decoded clip: frames uint8 [T, H, W, 3] (RGB) with its labels.

    `word` / `speaker` are None when the corpus carries no such label; `path` names the source
    (a video file, or a glob pattern over a clip's frame images).
    """

    frames: np.ndarray
    word: str | None
    speaker: str | None
    clip_id: str
    path: str


@dataclass(frozen=True)
class ClipRef:
    """Where a clip's frames live, known without decoding anything.

    Frame-folder clips list their image `files` in temporal order; video clips take frames
    `start` (inclusive) to `stop` (exclusive, None = to the end) of the video at `path`.
    """

    clip_id: str
    path: str
    word: str | None = None
    speaker: str | None = None
    split: str | None = None
    files: tuple[str, ...] = ()
    start: int = 0
    stop: int | None = None


# A clip's landmarks in its frames' pixels, in WORD_{clip:05d}.npz beside its frame images
# (`prepare` also stores the landmarks in source-video pixels there, under "landmarks").
LANDMARKS_KEY = "landmarks_crop"


def landmarks_file(ref: ClipRef) -> Path | None:
    """The landmarks file of a frame-folder clip (None for a clip of a video file)."""
    if not ref.files:
        return None
    return Path(ref.files[0]).parent / f"{ref.clip_id}.npz"


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3]; UnreadableMediaError naming a bad file.

    16-bit and 32-bit grey images (PIL modes I;16, I, F) are scaled to 0..255, not clipped."""
    with opened_image(path) as image:
        return rgb8(image)


def rgb8(image) -> np.ndarray:
    """A PIL image -> RGB uint8 [H, W, 3]. PIL's own conversion clips 16-bit grey to 255 (a
    16-bit frame would come out all white): such images are scaled from their white level."""
    mode = image.mode
    if mode not in ("I", "F") and not mode.startswith("I;16"):
        return np.asarray(image.convert("RGB"))
    pixels = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    white = 65535.0 if mode.startswith("I;16") else _white_level(mode, pixels.max(initial=0.0))
    grey = np.clip(np.rint(pixels * (255.0 / white)), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def _white_level(mode: str, brightest: float) -> float:
    """The white of an I or F image, which does not say its depth: 1 (float 0..1), 255 (8-bit
    values), 65535 (16-bit) or else its brightest pixel."""
    levels = (1.0, 255.0, 65535.0) if mode == "F" else (255.0, 65535.0)
    return next((level for level in levels if brightest <= level), brightest)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image from its header, without decoding the pixels."""
    with opened_image(path) as image:
        width, height = image.size
    return height, width


@contextlib.contextmanager
def opened_image(path: str | os.PathLike):
    """A PIL image of `path`; an unreadable file is an UnreadableMediaError naming it (a missing
    one stays FileNotFoundError)."""
    from PIL import Image, UnidentifiedImageError

    errors = (OSError, UnidentifiedImageError, SyntaxError, ValueError)
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError:
        raise
    except (*errors, Image.DecompressionBombError) as exc:
        raise UnreadableMediaError(f"cannot read image {path}: {exc}", path) from exc


class Reader(Sequence[Clip]):
    """A corpus of clips: `len(reader)`, `reader[i] -> Clip`, sorted `.words` and `.speakers`.

    Subclasses only build the index (`refs`); decoding is shared. `words` / `speakers` default to
    the sorted labels present in `refs`; a subclass may pass a wider vocabulary (e.g. LRW's words
    over all splits) so that label indices agree between splits.
    """

    layout: ClassVar[str] = ""

    def __init__(
        self,
        root: str | os.PathLike,
        refs: Sequence[ClipRef],
        words: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.refs = list(refs)
        self.words = sorted(words if words is not None else {r.word for r in self.refs if r.word})
        self.speakers = sorted(
            speakers if speakers is not None else {r.speaker for r in self.refs if r.speaker}
        )

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> Clip:  # type: ignore[override]
        ref = self.refs[index]
        return Clip(
            frames=self.load_frames(ref),
            word=ref.word,
            speaker=ref.speaker,
            clip_id=ref.clip_id,
            path=ref.path,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, clips={len(self)}, "
            f"words={len(self.words)}, speakers={len(self.speakers)})"
        )

    @staticmethod
    def load_frames(ref: ClipRef) -> np.ndarray:
        """Decode a clip's frames, uint8 [T, H, W, 3].

        Raises UnreadableMediaError naming the file for corrupt/empty media and ValueError naming
        the file when frame images of one clip differ in size.
        """
        if ref.files:
            frames = [load_image(f) for f in ref.files]
            for name, frame in zip(ref.files, frames, strict=True):
                if frame.shape != frames[0].shape:
                    raise ValueError(
                        f"frame {name} is {frame.shape[1]}x{frame.shape[0]}, but "
                        f"{ref.files[0]} is {frames[0].shape[1]}x{frames[0].shape[0]} "
                        "(expected one size per clip)"
                    )
            return np.stack(frames)
        frames, _ = read_video(ref.path, max_frames=ref.stop)
        frames = frames[ref.start : ref.stop]
        if len(frames) == 0:
            raise UnreadableMediaError(
                f"video {ref.path} ends before frame {ref.start} where clip {ref.clip_id} starts",
                ref.path,
            )
        return frames

    @staticmethod
    def load_landmarks(ref: ClipRef) -> np.ndarray:
        """The face tool's landmarks of a clip's frames, float32 [T, 478, 2] in frame pixels
        (NaN rows where no face was found), from the clip's `landmarks_file`."""
        path = landmarks_file(ref)
        if path is None or not path.is_file():
            raise ValueError(
                f"clip {ref.clip_id} ({ref.path}) has no landmarks file "
                f"({path or 'videos carry none'}): write the corpus with `factorflow prepare`, "
                "or `factorflow synth --landmarks`"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                landmarks = np.asarray(data[LANDMARKS_KEY], np.float32)
        except (*NPY_ERRORS, KeyError, zipfile.BadZipFile) as exc:
            raise UnreadableMediaError(f"cannot read landmarks {path}: {exc}", str(path)) from exc
        if landmarks.ndim != 3 or landmarks.shape[2] != 2:
            raise UnreadableMediaError(
                f"landmarks {path} have shape {landmarks.shape}, expected [T, K, 2]", str(path)
            )
        return landmarks

    @staticmethod
    def frame_size(ref: ClipRef) -> tuple[int, int]:
        """(H, W) of a clip's frames, read from a file header rather than by decoding."""
        if ref.files:
            return image_size(ref.files[0])
        info = video_info(ref.path)
        return info.height, info.width
