"""Reading and writing video files with PyAV (the `video` extra, imported lazily).

Frames are always RGB uint8 arrays shaped [N, H, W, 3] (a single frame: [H, W, 3]).
Every file written here appears atomically: it is encoded under a temporary name in the target
folder and renamed when complete, so an interrupted write never leaves a truncated video.

A stream that ends early (a file cut short: fewer decodable frames than its container announces,
beyond `SHORT_TOLERANCE`) is logged as a warning naming the file and both counts, and its frames
are returned: a cut clip is still usable, and readers that need whole clips check lengths.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from factorflow.io import atomic_file

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


def _pad_even(frames: np.ndarray) -> np.ndarray:
    # yuv420p subsamples chroma 2x2, so libx264 refuses odd sizes; replicate the last row/column.
    _, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


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


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    audio_from: str | os.PathLike | None = None,
    replace: bool = True,
) -> None:
    """Write RGB uint8 frames [N, H, W, 3] as .mp4 (H.264, yuv420p) or .gif, atomically.

    Odd frame sizes are padded by one replicated row/column for mp4. When `audio_from` names a
    file (video or audio only) with an audio stream, that audio is re-encoded as AAC into the mp4,
    cut to the video's duration (ignored for .gif, which has no audio). `replace=False` refuses
    an existing `path`.
    """
    path = Path(path)
    container_format = WRITE_FORMATS.get(path.suffix.lower())
    if container_format is None:
        raise ValueError(f"cannot write {path}: expected a .mp4 or .gif file name")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    frames = _check_frames(frames)
    rate = Fraction(fps).limit_denominator(1001)
    audio_source = None
    if audio_from is not None and container_format == "mp4":
        audio_source = _open_input(audio_from, need_video=False)
    try:
        with atomic_file(path, replace=replace) as tmp:
            _encode(tmp, container_format, frames, rate, audio_source)
    finally:
        if audio_source is not None:
            audio_source.close()


def _encode(tmp: Path, container_format: str, frames: np.ndarray, rate: Fraction, audio_source):
    import av

    with av.open(str(tmp), "w", format=container_format) as output:
        if container_format == "mp4":
            frames = _pad_even(frames)
            stream = output.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18"}
        else:
            stream = output.add_stream("gif", rate=rate)
            stream.pix_fmt = "rgb8"
        stream.height, stream.width = frames.shape[1:3]
        # Every stream must exist before the first packet is muxed (the header is written then).
        audio_in = audio_out = None
        if audio_source is not None and audio_source.streams.audio:
            audio_in = audio_source.streams.audio[0]
            audio_out = output.add_stream("aac", rate=audio_in.codec_context.sample_rate)
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
        if audio_out is not None:
            duration = len(frames) / float(rate)
            _transcode_audio(audio_source, audio_in, output, audio_out, duration)
