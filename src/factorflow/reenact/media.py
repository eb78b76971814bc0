"""Clips in and out: an image, a folder of frames or a video file; PNG folders, mp4 or gif out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from factorflow.data.video_io import DEFAULT_FPS, write_video
from factorflow.images import save_png
from factorflow.io import atomic_dir

__all__ = [
    "VIDEO_OUTPUTS",
    "load_clip",
    "output_kind",
    "side_by_side",
    "to_model_frames",
    "write_clip",
]

# What `write_clip` makes of an output name: a video, one PNG image, or else a folder of frames.
VIDEO_OUTPUTS = (".mp4", ".gif")


def load_clip(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """An image, a folder of images (sorted by name), an LRW clip prefix (WORD/WORD_00003 for
    WORD_00003_*.png), a GIF or a video -> (uint8 [N,H,W,3], fps), read by `streaming`."""
    from factorflow.reenact import streaming

    path = Path(path)
    streaming.check_input(path, "input")
    frames = list(streaming.frames(path, max_frames))
    if not frames:
        raise ValueError(f"{path} has no frames")
    return np.stack(frames), streaming.fps_of(path)


def to_model_frames(frames: np.ndarray, size: int | None, what: str) -> torch.Tensor:
    """uint8 [N,H,W,3] model-sized crops -> uint8 tensor [N,3,H,W]; other sizes are an error
    (`size` None: any size)."""
    if size is not None and frames.shape[1:3] != (size, size):
        raise ValueError(
            f"{what} frames are {frames.shape[2]}x{frames.shape[1]} but the model takes "
            f"{size}x{size} crops: drop --no-align to detect, align and crop faces"
        )
    return (
        torch.from_numpy(np.require(frames, requirements=["C", "W"]))
        .permute(0, 3, 1, 2)
        .contiguous()
    )


def side_by_side(*clips: np.ndarray) -> np.ndarray:
    """Clips [N,H,W,3] of one height -> [N,H,sum W,3]; a 1-frame clip is repeated."""
    n = max(len(c) for c in clips)
    return np.concatenate(
        [np.broadcast_to(c, (n, *c.shape[1:])) if len(c) == 1 else c for c in clips], axis=2
    )


def output_kind(out: str | Path) -> str:
    """ "video" (.mp4, .gif), "image" (.png: a one-frame result) or "frames" (a folder); other
    suffixes are an error rather than a folder named like a file."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix in VIDEO_OUTPUTS:
        return "video"
    if suffix == ".png":
        return "image"
    if suffix and not out.is_dir():
        raise ValueError(
            f"--out {out}: cannot write {suffix} files; expected .mp4, .gif, .png (one frame) "
            "or a folder name for frame_0000.png, ..."
        )
    return "frames"


def write_clip(
    out: str | Path,
    frames: np.ndarray,
    fps: float = DEFAULT_FPS,
    audio_from: str | Path | None = None,
    replace: bool = True,
) -> Path:
    """.mp4/.gif -> a video; .png -> one image (a one-frame clip only); anything else -> a folder
    of frame_{t:04d}.png. Written atomically; `replace=False` refuses an existing output."""
    out = Path(out)
    kind = output_kind(out)
    if kind == "video":
        write_video(
            out, frames, fps, audio_from=str(audio_from) if audio_from else None, replace=replace
        )
    elif kind == "image":
        if len(frames) != 1:
            raise ValueError(
                f"--out {out}: the result has {len(frames)} frames, a PNG holds one; name a "
                ".mp4, a .gif or a folder"
            )
        save_png(frames[0], out, replace=replace)
    else:
        with atomic_dir(out, replace=replace) as tmp:
            for t, frame in enumerate(frames):
                save_png(frame, tmp / f"frame_{t:04d}.png")
    return out
