"""Uploads -> frames, or an `InputError` whose one-line message the page shows.

Checked before any model runs: that a file was given, its size against the upload limit, that it
decodes as what it should be (a driver is a video; a target is an image or a video), that it is
at most `max_seconds` long (decoding stops just past the limit, so a long upload costs little)
and that its frames are at least `min_side` pixels on the short side.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from factorflow.app.settings import AppSettings
from factorflow.data.video_io import DEFAULT_FPS
from factorflow.io import IMAGE_EXTENSIONS

__all__ = [
    "InputError",
    "check_frames",
    "check_size",
    "driver_clip",
    "read_image",
    "read_video",
    "target_face",
]


class InputError(ValueError):
    """A problem with what the user gave: shown in the page as one line."""


def check_size(path: Path, settings: AppSettings, what: str) -> None:
    size_mb = path.stat().st_size / (1024 * 1024)
    if size_mb > settings.max_upload_mb:
        raise InputError(
            f"{what} {path.name}: {size_mb:.1f} MB is over the upload limit of "
            f"{settings.max_upload_mb:g} MB"
        )


def _given(path: str | Path | None, what: str) -> Path:
    if path is None or str(path) == "":
        raise InputError(f"no {what} given: upload one or pick an example")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path.name}: the uploaded file is gone; upload it again")
    return path


def read_image(path: Path, what: str) -> np.ndarray:
    """uint8 [1,H,W,3]; a file that is not an image is an InputError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))[None]
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{what} {path.name} is not an image ({exc})") from None


def read_video(
    path: Path, settings: AppSettings, what: str, keep: bool = True
) -> tuple[np.ndarray, float]:
    """uint8 [T,H,W,3] and fps; not a video, or longer than the limit, is an InputError.
    `keep=False` decodes and counts every frame but returns only the first ([1,H,W,3]): the
    checks without the memory, for a pipeline that reads the file again as it streams."""
    from factorflow.data.video_io import UnreadableMediaError, iter_video, video_info
    from factorflow.data.video_io import read_video as decode

    try:
        info = video_info(path)
        fps = info.fps or DEFAULT_FPS
        if info.num_frames and info.num_frames / fps > settings.max_seconds:
            raise InputError(_too_long(path, info.num_frames / fps, settings, what))
        limit = math.floor(settings.max_seconds * fps) + 1
        if keep:
            frames, fps = decode(path, max_frames=limit)
            count = len(frames)
        else:
            count, first = 0, None
            for frame in iter_video(path, max_frames=limit):
                first = frame if first is None else first
                count += 1
            frames = first[None]
    except UnreadableMediaError as exc:
        raise InputError(f"{what} {path.name} is not a video this app can read ({exc})") from None
    if count >= limit:
        raise InputError(_too_long(path, count / fps, settings, what, at_least=True))
    return frames, fps


def _too_long(path: Path, seconds: float, s: AppSettings, what: str, at_least=False) -> str:
    more = "more than " if at_least else ""
    return f"{what} {path.name} is {more}{seconds:.1f} s long; the limit is {s.max_seconds:g} s"


def check_frames(frames: np.ndarray, path: Path, settings: AppSettings, what: str) -> np.ndarray:
    height, width = frames.shape[1:3]
    if min(height, width) < settings.min_side:
        raise InputError(
            f"{what} {path.name} is {width}x{height} pixels: too small, at least "
            f"{settings.min_side} pixels on the short side are needed to find and crop a face"
        )
    return frames


def driver_clip(
    path: str | Path | None, settings: AppSettings, keep: bool = True
) -> tuple[np.ndarray, float, Path]:
    """The driving clip: (frames uint8 [T,H,W,3], fps, its path); `keep=False`: the first frame
    only (every frame is still checked)."""
    path = _given(path, "driving clip")
    check_size(path, settings, "driving clip")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise InputError(f"driving clip {path.name} is an image: the driver must be a video")
    frames, fps = read_video(path, settings, "driving clip", keep)
    return check_frames(frames, path, settings, "driving clip"), fps, path


def target_face(path: str | Path | None, settings: AppSettings, keep: bool = True) -> np.ndarray:
    """The target: an image ([1,H,W,3]) or a video ([T',H,W,3]; `keep=False`: its first frame)
    of the face to animate."""
    path = _given(path, "target face")
    check_size(path, settings, "target face")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        frames = read_image(path, "target face")
    else:
        frames, _ = read_video(path, settings, "target face", keep)
    return check_frames(frames, path, settings, "target face")
