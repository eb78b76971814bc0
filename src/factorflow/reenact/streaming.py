"""Frames in and out one at a time, so memory does not grow with a clip's length."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from factorflow.data.video_io import VIDEO_EXTENSIONS, iter_video, video_info

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def is_still(path: Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_still(path: Path) -> np.ndarray:
    from factorflow.data.readers.base import load_image

    return load_image(path)


def check_input(path: Path, what: str) -> None:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not (is_still(path) or path.suffix.lower() in VIDEO_EXTENSIONS):
        raise ValueError(f"{what} {path}: expected an image or a video file")


def fps_of(path: Path, default: float = 25.0) -> float:
    if is_still(path):
        return default
    fps = video_info(path).fps
    return fps if fps > 0 else default


def frames(path: Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """The frames of a video (or the one frame of a still), decoded as they are used."""
    if is_still(path):
        yield read_still(path)
        return
    yield from iter_video(path, max_frames=max_frames)


def looped(path: Path, count: int) -> Iterator[np.ndarray]:
    """`count` frames of a video played forwards again and again (a still: repeated)."""
    if is_still(path):
        frame = read_still(path)
        for _ in range(count):
            yield frame
        return
    done = 0
    while done < count:
        before = done
        for frame in iter_video(path):
            yield frame
            done += 1
            if done == count:
                return
        if done == before:
            raise ValueError(f"{path} has no frames")


class VideoSink:
    """Write RGB frames one by one to .mp4 (H.264) or .gif, atomically; audio copied on close."""

    def __init__(self, path: Path, fps: float, audio_from: Path | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".gif"):
            raise ValueError(f"cannot write {self.path}: expected a .mp4 or .gif file name")
        self.fps = fps
        self.audio_from = audio_from if self.path.suffix.lower() == ".mp4" else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp-{os.getpid()}{self.path.suffix}")
        self._out = None
        self._stream = None
        self.count = 0

    def _open(self, frame: np.ndarray) -> None:
        import av

        mp4 = self.path.suffix.lower() == ".mp4"
        self._out = av.open(str(self.tmp), "w", format="mp4" if mp4 else "gif")
        rate = Fraction(self.fps).limit_denominator(1001)
        if mp4:
            self._stream = self._out.add_stream("libx264", rate=rate)
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": "18", "preset": "superfast"}
        else:
            self._stream = self._out.add_stream("gif", rate=rate)
            self._stream.pix_fmt = "rgb8"
        h, w = frame.shape[:2]
        self._even = mp4
        self._stream.height, self._stream.width = (h + h % 2, w + w % 2) if mp4 else (h, w)
        self._audio = None
        if self.audio_from is not None:
            from factorflow.data.video_io import has_audio

            if has_audio(self.audio_from):
                self._audio_src = av.open(str(self.audio_from))
                self._audio_in = self._audio_src.streams.audio[0]
                self._audio = self._out.add_stream(
                    "aac", rate=self._audio_in.codec_context.sample_rate
                )

    def write(self, frame: np.ndarray) -> None:
        import av

        if self._out is None:
            self._open(frame)
        if self._even:
            h, w = frame.shape[:2]
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._out.mux(packet)
        self.count += 1

    def close(self) -> Path:
        from factorflow.data.video_io import _transcode_audio

        if self._out is None:
            raise ValueError(f"no frames to write to {self.path}")
        try:
            for packet in self._stream.encode(None):
                self._out.mux(packet)
            if self._audio is not None:
                import av

                duration = self.count / self.fps
                try:
                    _transcode_audio(
                        self._audio_src, self._audio_in, self._out, self._audio, duration
                    )
                except av.FFmpegError as exc:
                    log.warning("%s: audio copied only in part (%s)", self.audio_from, exc)
            self._out.close()
            os.replace(self.tmp, self.path)
        finally:
            if self._audio is not None:
                self._audio_src.close()
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()
        return self.path

    def abort(self) -> None:
        if self._out is not None:
            with contextlib.suppress(Exception):
                self._out.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
