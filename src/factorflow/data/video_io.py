"""Reading and writing video files with PyAV (the `video` extra, imported lazily).

Frames are always RGB uint8 arrays shaped [N, H, W, 3] (a single frame: [H, W, 3]).
Every file written here appears atomically: it is encoded under a temporary name in the target
folder and renamed when complete, so an interrupted write never leaves a truncated video.

A stream that ends early (a file cut short: fewer decodable frames than its container announces,
beyond `SHORT_TOLERANCE`) is logged as a warning naming the file and both counts, and its frames
are returned: a cut clip is still usable, and readers that need whole clips check lengths.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from factorflow.io import OutputExistsError, fsync_dir, has_content, sweep_stale, tmp_name

__all__ = [
    "DEFAULT_FPS",
    "SHORT_TOLERANCE",
    "VIDEO_EXTENSIONS",
    "WRITE_FORMATS",
    "X264_OPTIONS",
    "UnreadableMediaError",
    "VideoInfo",
    "VideoSink",
    "has_audio",
    "iter_video",
    "read_video",
    "video_info",
    "write_video",
]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")
WRITE_FORMATS = {".mp4": "mp4", ".gif": "gif"}
DEFAULT_FPS = 25.0
# Frames a stream may fall short of its container's count without a warning (some muxers count
# one or two frames an edit list hides).
SHORT_TOLERANCE = 2


class UnreadableMediaError(ValueError):
    """A video or image file exists but cannot be decoded (corrupt, empty, 0 frames).

    `path` is the offending file, for callers that skip it and keep a list.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)


@dataclass(frozen=True)
class VideoInfo:
    """Container-level facts about a video; `num_frames` is 0 when the container does not say."""

    path: str
    fps: float
    width: int
    height: int
    num_frames: int
    has_audio: bool


def _open_input(path: str | os.PathLike, need_video: bool = True):
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise UnreadableMediaError(f"cannot open video {path}: {exc}", path) from exc
    if need_video and not container.streams.video:
        container.close()
        raise UnreadableMediaError(f"{path} has no video stream (expected a video file)", path)
    return container


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    # Some containers (raw MPEG, GIF) carry no usable rate; 25 fps is the LRW/GRID rate.
    return float(rate) if rate else DEFAULT_FPS


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, size, frame count (0 if unknown) and audio presence, without decoding."""
    with _open_input(path) as container:
        stream = container.streams.video[0]
        return VideoInfo(
            path=str(path),
            fps=_stream_fps(stream),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            num_frames=int(stream.frames or 0),
            has_audio=bool(container.streams.audio),
        )


def has_audio(path: str | os.PathLike) -> bool:
    """Whether the file holds at least one audio stream."""
    return video_info(path).has_audio


def _decode(container, path, max_frames: int | None) -> Iterator[np.ndarray]:
    import av

    if max_frames is not None and max_frames < 1:
        raise ValueError(f"--max-frames {max_frames}: expected at least 1 frame of {path}")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    count = 0
    try:
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")
            count += 1
            if count == max_frames:
                return
    except av.FFmpegError as exc:
        raise UnreadableMediaError(
            f"cannot decode video {path} after {count} frames: {exc}", path
        ) from exc
    if count == 0:
        raise UnreadableMediaError(f"video {path} has 0 decodable frames", path)
    _warn_if_short(path, count, int(stream.frames or 0))


def _warn_if_short(path, decoded: int, declared: int) -> None:
    if declared - decoded > SHORT_TOLERANCE:
        log.warning(
            "video %s: decoded %d of the %d frames its header declares (the file is cut short)",
            path,
            decoded,
            declared,
        )


def iter_video(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode frames one at a time as RGB uint8 [H, W, 3], stopping after `max_frames`.

    Streaming keeps memory flat for long videos. Raises UnreadableMediaError naming the file when
    it cannot be decoded or yields no frame at all; warns when it ends early (see above).
    """
    with _open_input(path) as container:
        yield from _decode(container, path, max_frames)


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a whole video (or its first `max_frames` frames).

    Returns (frames uint8 [N, H, W, 3], fps). Raises FileNotFoundError for a missing file and
    UnreadableMediaError (a ValueError) naming the file for a corrupt or 0-frame video.
    """
    with _open_input(path) as container:
        fps = _stream_fps(container.streams.video[0])
        return np.stack(list(_decode(container, path, max_frames))), fps


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(
            f"frames must be uint8 [N, H, W, 3] with N >= 1, got {frames.dtype} {frames.shape}"
        )
    return frames


def _transcode_audio(source, in_stream, output, out_stream, duration: float) -> None:
    """Re-encode `in_stream` of the open `source` into `out_stream`, cut at `duration` s."""
    for frame in source.decode(in_stream):
        if frame.time is not None and frame.time >= duration:
            break
        # The encoder numbers samples itself; the source's timestamps would clash with its own.
        frame.pts = None
        for packet in out_stream.encode(frame):
            output.mux(packet)
    for packet in out_stream.encode(None):
        output.mux(packet)


# One x264 preset for every video written: superfast encodes carphone (176x144, 120 frames) 3.3x
# faster than x264's default (medium), for 1.7x the bytes and 0.3 dB less PSNR at crf 18
# (benchmarks/video_preset.py).
X264_OPTIONS = {"crf": "18", "preset": "superfast"}


class VideoSink:
    """Write RGB uint8 frames [H, W, 3] one at a time as .mp4 (H.264, yuv420p) or .gif.

    The file is encoded under a temporary name in the target folder and renamed by `close`;
    `abort` leaves nothing. Odd frame sizes are padded by one replicated row/column for mp4
    (yuv420p subsamples chroma 2x2). When `audio_from` names a file (video or audio only) with an
    audio stream, that audio is re-encoded as AAC into the mp4, cut to the video's duration
    (ignored for .gif). `replace=False` refuses an existing `path`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        audio_from: str | os.PathLike | None = None,
        replace: bool = True,
    ) -> None:
        self.path = Path(path)
        self.format = WRITE_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise ValueError(f"cannot write {self.path}: expected a .mp4 or .gif file name")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if not replace and has_content(self.path):
            raise OutputExistsError(f"{self.path} exists (pass --force to replace it)")
        self.fps = fps
        self.rate = Fraction(fps).limit_denominator(1001)
        self.audio_from = audio_from if self.format == "mp4" else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(self.path.parent)  # what a killed run left
        self.tmp = tmp_name(self.path)
        self.count = 0
        self.shape: tuple[int, ...] | None = None
        self._out = self._stream = self._audio_src = self._audio = None

    def _open(self, frame: np.ndarray) -> None:
        import av

        self.shape = frame.shape
        h, w = frame.shape[:2]
        if self.audio_from is not None:
            self._audio_src = _open_input(self.audio_from, need_video=False)
        self._out = av.open(str(self.tmp), "w", format=self.format)
        if self.format == "mp4":
            self._stream = self._out.add_stream("libx264", rate=self.rate)
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = dict(X264_OPTIONS)
            h, w = h + h % 2, w + w % 2
        else:
            self._stream = self._out.add_stream("gif", rate=self.rate)
            self._stream.pix_fmt = "rgb8"
        self._stream.height, self._stream.width = h, w
        # Every stream must exist before the first packet is muxed (the header is written then).
        if self._audio_src is not None and self._audio_src.streams.audio:
            rate = self._audio_src.streams.audio[0].codec_context.sample_rate
            self._audio = self._out.add_stream("aac", rate=rate)

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame [H, W, 3]; every frame has the first one's size."""
        import av

        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        if self._out is None:
            self._open(frame)
        elif frame.shape != self.shape:
            raise ValueError(
                f"frame {self.count} of {self.path} is {frame.shape}, the first was {self.shape}"
            )
        h, w = frame.shape[:2]
        if self.format == "mp4" and (h % 2 or w % 2):
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._out.mux(packet)
        self.count += 1

    def close(self) -> Path:
        """Finish the file and rename it onto `path`; returns `path`."""
        import av

        if self._out is None:
            raise ValueError(f"no frames to write to {self.path}")
        try:
            for packet in self._stream.encode(None):
                self._out.mux(packet)
            if self._audio is not None:
                audio_in = self._audio_src.streams.audio[0]
                try:
                    _transcode_audio(
                        self._audio_src, audio_in, self._out, self._audio, self.count / self.fps
                    )
                except av.FFmpegError as exc:
                    log.warning("%s: audio copied only in part (%s)", self.audio_from, exc)
            self._out.close()
            self._out = None
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
            fsync_dir(self.path.parent)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Drop what was written (nothing of `path` is touched)."""
        if self._out is not None:
            with contextlib.suppress(Exception):
                self._out.close()
            self._out = None
        if self._audio_src is not None:
            self._audio_src.close()
            self._audio_src = None
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    audio_from: str | os.PathLike | None = None,
    replace: bool = True,
) -> None:
    """Write RGB uint8 frames [N, H, W, 3] as .mp4 or .gif through one `VideoSink` (its options)."""
    frames = _check_frames(frames)
    sink = VideoSink(path, fps, audio_from, replace)
    try:
        for image in frames:
            sink.write(image)
        sink.close()
    except BaseException:
        sink.abort()
        raise
