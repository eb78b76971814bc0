"""The clip model shared by every reader: an index of `ClipRef`s built by listing files, and
frames decoded lazily when a clip is asked for."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from factorflow.data.video_io import UnreadableMediaError, read_video, video_info


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


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3]; UnreadableMediaError naming a bad file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise UnreadableMediaError(f"cannot read image {path}: {exc}", path) from exc


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image from its header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise UnreadableMediaError(f"cannot read image {path}: {exc}", path) from exc
    return height, width


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
    def frame_size(ref: ClipRef) -> tuple[int, int]:
        """(H, W) of a clip's frames, read from a file header rather than by decoding."""
        if ref.files:
            return image_size(ref.files[0])
        info = video_info(ref.path)
        return info.height, info.width
