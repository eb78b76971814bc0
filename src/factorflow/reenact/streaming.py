"""Frames in and out one at a time, so memory does not grow with a clip's length.

In: a video file, a still image, or a folder of frame images (sorted by name, 25 frames/s).
Out (`open_sink`): .mp4 (H.264, the driver's audio copied) or .gif, one .png (a one-frame
result), or a folder of frame_{t:04d}.png; each written under a temporary name and renamed when
complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from factorflow.data.video_io import (
    DEFAULT_FPS,
    VIDEO_EXTENSIONS,
    VideoSink,
    iter_video,
    video_info,
)
from factorflow.io import IMAGE_EXTENSIONS, sweep_stale, tmp_name

__all__ = [
    "VIDEO_INPUTS",
    "FrameSink",
    "check_input",
    "fps_of",
    "frame_files",
    "frames",
    "is_frames",
    "is_still",
    "open_sink",
    "read_still",
    "scheduled",
    "target_schedule",
]

VIDEO_INPUTS = (*VIDEO_EXTENSIONS, ".gif")  # an animated GIF is read as a video


def is_still(path: Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS and not Path(path).is_dir()


def read_still(path: Path) -> np.ndarray:
    from factorflow.data.readers.base import load_image

    return load_image(path)


def frame_files(path: Path) -> list[Path]:
    """The frame images of a folder, or of an LRW clip named by its prefix (WORD/WORD_00003 for
    WORD_00003_*.png), sorted by name; [] for anything else."""
    path = Path(path)
    if path.is_dir():
        files = path.iterdir()
    elif not path.exists() and path.parent.is_dir():
        files = path.parent.glob(f"{path.name}_*")
    else:
        return []
    return sorted(p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def is_frames(path: Path) -> bool:
    """A folder of frames or an LRW clip prefix (not a file)."""
    return not Path(path).is_file() and bool(frame_files(path))


def check_input(path: Path, what: str) -> None:
    """A one-line error naming `what` unless `path` is a video, an image or frames."""
    path = Path(path)
    if path.is_dir() or not path.exists():
        if frame_files(path):
            return
        if path.is_dir():
            raise ValueError(
                f"{what} {path} is a folder without frame images ({', '.join(IMAGE_EXTENSIONS)})"
            )
        raise FileNotFoundError(f"{what} {path} does not exist (nor frames {path.name}_*.png)")
    if not (is_still(path) or path.suffix.lower() in VIDEO_INPUTS):
        raise ValueError(
            f"{what} {path}: expected a video ({', '.join(VIDEO_INPUTS)}), an image or a folder "
            "of frames"
        )


def fps_of(path: Path, default: float = DEFAULT_FPS) -> float:
    if is_still(path) or not Path(path).is_file():
        return default
    fps = video_info(path).fps
    return fps if fps > 0 else default


def frames(path: Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """The frames of a video or a frame folder (or the one frame of a still), read as they are
    used. Frames of a folder must share one size."""
    path = Path(path)
    if is_still(path):
        yield read_still(path)
        return
    if not path.is_file():
        shape = None
        for file in frame_files(path)[:max_frames]:
            frame = read_still(file)
            if shape is not None and frame.shape != shape:
                raise ValueError(
                    f"frame {file} is {frame.shape[1]}x{frame.shape[0]}, the frames before it "
                    f"in {path} are {shape[1]}x{shape[0]}"
                )
            shape = frame.shape
            yield frame
        return
    yield from iter_video(path, max_frames=max_frames)


def target_schedule(n: int, length: int, mode: str = "loop") -> np.ndarray:
    """Which of a target's `length` frames each of `n` driver frames uses: "loop" plays it
    forwards again and again, "bounce" forwards and back, "cut" stops at the shorter of the two
    (fewer than n indices). A still (length 1) serves every frame."""
    if mode not in ("loop", "bounce", "cut"):
        raise ValueError(f"length mode {mode!r}: expected loop, bounce or cut")
    if length < 1:
        raise ValueError("the target has no frames")
    if length == 1:
        return np.zeros(n, int)
    if mode == "cut":
        return np.arange(min(n, length))
    if mode == "bounce":
        cycle = np.concatenate([np.arange(length), np.arange(length - 2, 0, -1)])
        return cycle[np.arange(n) % len(cycle)]
    return np.arange(n) % length


def scheduled(path: Path, schedule: np.ndarray) -> Iterator[np.ndarray]:
    """The target's frames in the order of `schedule` (`target_schedule`). Played forwards the
    video is decoded again each time round; played back, the frames of one pass are kept."""
    if is_still(path):
        frame = read_still(path)
        for _ in schedule:
            yield frame
        return
    steps = np.diff(schedule)
    if np.all((steps == 1) | (schedule[1:] == 0)):  # forwards, from the start each time round
        source = frames(path)
        for index in schedule:
            frame = next(source, None) if index else None
            if frame is None:
                source = frames(path)
                frame = next(source, None)
            if frame is None:
                raise ValueError(f"{path} has no frames")
            yield frame
        return
    kept: list[np.ndarray] = []
    source = frames(path)
    for index in schedule:
        while len(kept) <= index:
            frame = next(source, None)
            if frame is None:
                raise ValueError(f"{path} has fewer frames than announced ({len(kept)})")
            kept.append(frame)
        yield kept[index]


def open_sink(
    out: Path, fps: float, audio_from: Path | None = None, replace: bool = False
) -> VideoSink | FrameSink:
    """The sink for `out`: .mp4/.gif -> a video (audio copied from a video `audio_from`), .png ->
    one image, anything else -> a folder of frame_{t:04d}.png."""
    out = Path(out)
    if out.suffix.lower() in (".mp4", ".gif"):
        audio = audio_from if audio_from is not None and Path(audio_from).is_file() else None
        return VideoSink(out, fps, None if audio is None or is_still(audio) else audio)
    return FrameSink(out, replace=replace)


class FrameSink:
    """Write RGB frames one by one as PNG: to a folder of frame_{t:04d}.png, or (an `out`
    ending in .png) to one image, refused when a second frame comes. The folder is built under
    a temporary name and renamed on close; `abort` leaves nothing."""

    def __init__(self, path: Path, replace: bool = False) -> None:
        self.path = Path(path)
        self.single = self.path.suffix.lower() == ".png"
        self.replace = replace
        if self.path.parent.is_dir():
            sweep_stale(self.path.parent)
        self.tmp = tmp_name(self.path)
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        from factorflow.images import save_png

        if self.single:
            if self.count:
                raise ValueError(
                    f"--out {self.path}: a PNG holds one frame and the result has more; name a "
                    ".mp4, a .gif or a folder"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_png(frame, self.tmp)
        else:
            self.tmp.mkdir(parents=True, exist_ok=True)
            save_png(frame, self.tmp / f"frame_{self.count:04d}.png")
        self.count += 1

    def close(self) -> Path:
        import shutil

        if not self.count:
            raise ValueError(f"no frames to write to {self.path}")
        if self.path.exists() and self.replace:
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        import shutil

        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            self.tmp.unlink()
