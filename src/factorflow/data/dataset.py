"""PyTorch datasets over a clip Reader: fixed-length clips, or single frames for stage-1 training.

Clips are decoded on demand and kept in a small LRU cache, so a corpus larger than memory trains by
streaming from disk. Unreadable clips are skipped (with a warning naming the file) and replaced by
the next readable clip, deterministically.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from factorflow.data.readers import ClipRef, Reader
from factorflow.data.video_io import UnreadableMediaError

__all__ = ["ClipDataset", "FrameDataset", "fit_length", "resize_frames"]


def fit_length(frames: np.ndarray, length: int) -> np.ndarray:
    """Pad (repeating the last frame) or centre-crop `frames` [N, ...] in time to [length, ...]."""
    n = len(frames)
    if n >= length:
        start = (n - length) // 2
        return frames[start : start + length]
    return np.concatenate([frames, np.repeat(frames[-1:], length - n, axis=0)])


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 frames [T, H, W, 3] to [T, size[0], size[1], 3] (antialiased bicubic)."""
    from PIL import Image

    height, width = size
    return np.stack(
        [
            np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BICUBIC))
            for f in frames
        ]
    )


def _as_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _first_file(ref: ClipRef) -> str:
    return ref.files[0] if ref.files else ref.path


class ClipDataset(Dataset):
    """Fixed-length clips of a Reader.

    Item i is a dict: frames uint8 [T, 3, H, W], word long (index in `words`, -1 if none),
    speaker long (index in `speakers`, -1 if none) and index long (the clip actually returned,
    which differs from i when clip i was unreadable and replaced).

    - frames: clip length T; longer clips are centre-cropped, shorter ones repeat their last frame.
    - size: (H, W) or an int for square frames; None takes the size of the first readable clip.
      A clip of another size raises ValueError naming its file, unless `resize=True`.
    - cache_items: decoded clips kept in memory (least recently used dropped first); 0 disables.
    - words / speakers: label vocabularies (default: the reader's sorted lists); pass the training
      set's lists to keep indices aligned on another split. Labels outside them give -1.

    `skipped` lists the files of unreadable clips met so far and `summary()` describes them. Each
    DataLoader worker holds its own copy, so in multi-worker loading these count per process.
    """

    def __init__(
        self,
        reader: Reader,
        frames: int = 16,
        size: int | Sequence[int] | None = None,
        resize: bool = False,
        cache_items: int = 8,
        words: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None,
    ) -> None:
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        if cache_items < 0:
            raise ValueError(f"cache_items must be >= 0, got {cache_items}")
        if len(reader) == 0:
            raise ValueError(f"reader over {reader.root} holds no clips")
        self.reader = reader
        self.frames = frames
        self.resize = resize
        self.cache_items = cache_items
        self.words = list(words if words is not None else reader.words)
        self.speakers = list(speakers if speakers is not None else reader.speakers)
        self._word_index = {w: i for i, w in enumerate(self.words)}
        self._speaker_index = {s: i for i, s in enumerate(self.speakers)}
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._bad: dict[int, tuple[str, str]] = {}
        self.size = _as_size(size) or self._probe_size()

    @property
    def skipped(self) -> list[str]:
        """Files of the unreadable clips met so far, in the order they were met."""
        return [path for path, _ in self._bad.values()]

    def _mark_bad(self, index: int, exc: UnreadableMediaError) -> None:
        path = exc.path or _first_file(self.reader.refs[index])
        self._bad[index] = (path, str(exc))
        warnings.warn(f"skipping unreadable clip {path}: {exc}", RuntimeWarning, stacklevel=3)

    def _all_bad_error(self) -> ValueError:
        _, first = next(iter(self._bad.values()))
        return ValueError(
            f"every clip of {self.reader.root} is unreadable ({len(self.reader)} checked); "
            f"first error: {first}"
        )

    def _probe_size(self) -> tuple[int, int]:
        for index in range(len(self.reader)):
            try:
                return self.reader.frame_size(self.reader.refs[index])
            except UnreadableMediaError as exc:
                self._mark_bad(index, exc)
        raise self._all_bad_error()

    def __len__(self) -> int:
        return len(self.reader)

    def _decode(self, index: int) -> torch.Tensor:
        ref = self.reader.refs[index]
        frames = self.reader.load_frames(ref)
        if frames.shape[1:3] != self.size:
            if not self.resize:
                h, w = frames.shape[1:3]
                fix = f" or train with data.size={w}" if h == w and w >= 8 else ""
                raise ValueError(
                    f"{_first_file(ref)} has {w}x{h} frames, expected "
                    f"{self.size[1]}x{self.size[0]}: write the data at that size (`factorflow "
                    f"prepare` or `synth` with --size {self.size[1]}){fix}"
                )
            frames = resize_frames(frames, self.size)
        frames = fit_length(frames, self.frames)
        return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))

    def clip_frames(self, index: int) -> tuple[int, torch.Tensor]:
        """(index of the clip returned, its frames uint8 [T, 3, H, W]) for clip `index`.

        An unreadable clip is recorded once and replaced by the next readable one (wrapping).
        """
        n = len(self.reader)
        if not -n <= index < n:
            raise IndexError(f"clip index {index} out of range for {n} clips")
        index %= n
        for step in range(n):
            candidate = (index + step) % n
            if candidate in self._bad:
                continue
            cached = self._cache.get(candidate)
            if cached is not None:
                self._cache.move_to_end(candidate)
                return candidate, cached
            try:
                frames = self._decode(candidate)
            except UnreadableMediaError as exc:
                self._mark_bad(candidate, exc)
                continue
            if self.cache_items:
                self._cache[candidate] = frames
                while len(self._cache) > self.cache_items:
                    self._cache.popitem(last=False)
            return candidate, frames
        raise self._all_bad_error()

    def clip_landmarks(self, index: int) -> np.ndarray:
        """The face tool's landmarks of clip `index` (as `clip_frames` returns it), float32
        [T, 478, 2] in the pixels of its frames, fitted to T and scaled like the frames."""
        ref = self.reader.refs[index]
        landmarks = self.reader.load_landmarks(ref)
        height, width = self.reader.frame_size(ref)
        if (height, width) != self.size:
            landmarks = landmarks * np.array([self.size[1] / width, self.size[0] / height])
        return fit_length(landmarks, self.frames).astype(np.float32)

    def labels(self, index: int) -> tuple[int, int]:
        """(word index, speaker index) of clip `index`, -1 where absent, without decoding."""
        ref = self.reader.refs[index]
        return self._word_index.get(ref.word, -1), self._speaker_index.get(ref.speaker, -1)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        actual, frames = self.clip_frames(index)
        word, speaker = self.labels(actual)
        return {
            "frames": frames,
            "word": torch.tensor(word, dtype=torch.long),
            "speaker": torch.tensor(speaker, dtype=torch.long),
            "index": torch.tensor(actual, dtype=torch.long),
        }

    def summary(self) -> str:
        """One paragraph: clips, frame geometry, and each unreadable clip skipped so far."""
        height, width = self.size
        text = (
            f"{len(self)} clips from {self.reader.root} ({self.reader.layout}), "
            f"{self.frames} frames of {width}x{height}, {len(self.words)} words, "
            f"{len(self.speakers)} speakers; skipped {len(self.skipped)} unreadable"
        )
        details = [f"  {path}: {reason}" for path, reason in self._bad.values()]
        return "\n".join([text, *details])


class FrameDataset(Dataset):
    """Single frames of a ClipDataset, for training the image flow (stage 1).

    Item i is frame i % T of clip i // T: a dict with image uint8 [3, H, W], word, speaker,
    index (the clip) and frame (its time step), all long scalars besides the image. Consecutive
    items share a clip, so sequential access decodes each clip once; with shuffling, give the
    ClipDataset a cache large enough for the working set.
    """

    def __init__(self, clips: ClipDataset) -> None:
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips) * self.clips.frames

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame index {index} out of range for {len(self)} frames")
        clip, step = divmod(index % len(self), self.clips.frames)
        actual, frames = self.clips.clip_frames(clip)
        word, speaker = self.clips.labels(actual)
        return {
            "image": frames[step],
            "word": torch.tensor(word, dtype=torch.long),
            "speaker": torch.tensor(speaker, dtype=torch.long),
            "index": torch.tensor(actual, dtype=torch.long),
            "frame": torch.tensor(step, dtype=torch.long),
        }
