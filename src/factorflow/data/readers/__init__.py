"""Clip readers for the corpora factorflow trains on, and `open_reader` to pick one.

Every reader lists files when it is built and decodes frames only when a clip is indexed:
`reader[i] -> Clip` with frames uint8 [T, H, W, 3]; `len(reader)`; sorted `reader.words` and
`reader.speakers`. Layouts:

- "lrw":     ROOT/{split}/WORD/WORD_{clip}_{frame}.{png,jpg} (+ ROOT/meta.json for speakers)
- "lrw-mp4": ROOT/WORD/{split}/WORD_{clip}.mp4
- "grid":    ROOT/s{N}/NAME.{mpg,mp4} + NAME.align alignments (per-word clips)
- "videos":  any folder of videos, or a single video file (speaker = file stem)
"""

from __future__ import annotations

import os
from pathlib import Path

from factorflow.data.readers.base import Clip, ClipRef, Reader, image_size, load_image
from factorflow.data.readers.grid import (
    GRID_VIDEO_EXTENSIONS,
    GridReader,
    read_align,
    speaker_dirs,
)
from factorflow.data.readers.lrw import SPLITS, LRWFramesReader, LRWVideoReader, has_frame_clips
from factorflow.data.readers.videos import VideoFolderReader, find_videos, is_video

__all__ = [
    "LAYOUTS",
    "Clip",
    "ClipRef",
    "GridReader",
    "LRWFramesReader",
    "LRWVideoReader",
    "Reader",
    "VideoFolderReader",
    "detect_layout",
    "image_size",
    "load_image",
    "open_reader",
    "read_align",
]

LAYOUTS = ("lrw", "lrw-mp4", "grid", "videos")

EXPECTED = (
    "LRW frame folders (ROOT/{split}/WORD/WORD_00001_01.png), LRW mp4s "
    "(ROOT/WORD/{split}/WORD_00001.mp4), GRID (ROOT/s1/NAME.mpg with NAME.align alignments) "
    "or a folder of videos"
)


def _has_lrw_mp4(root: Path, probe: int = 5) -> bool:
    word_dirs = sorted(p for p in root.iterdir() if p.is_dir())[:probe]
    return any((d / s).is_dir() and any((d / s).glob("*.mp4")) for d in word_dirs for s in SPLITS)


def _has_grid(root: Path) -> bool:
    return any(
        p.suffix.lower() in GRID_VIDEO_EXTENSIONS for d in speaker_dirs(root) for p in d.iterdir()
    )


def detect_layout(root: str | os.PathLike, split: str = "train") -> str:
    """Guess the layout of `root` from a few directory listings (no decoding)."""
    root = Path(root)
    if root.is_file():
        if is_video(root):
            return "videos"
        raise ValueError(f"{root} is a file but not a video (expected a folder or {EXPECTED})")
    if not root.is_dir():
        raise FileNotFoundError(f"dataset path not found: {root}")
    if has_frame_clips(root / split) or has_frame_clips(root):
        return "lrw"
    if _has_lrw_mp4(root):
        return "lrw-mp4"
    if _has_grid(root):
        return "grid"
    if find_videos(root):
        return "videos"
    raise ValueError(f"no clips found in {root}: expected {EXPECTED}")


def open_reader(
    root: str | os.PathLike,
    layout: str = "auto",
    split: str = "train",
    **options,
) -> Reader:
    """Open the corpus at `root` as a Reader.

    layout: "auto" (detected from the folder structure) or one of LAYOUTS. `split` selects the
    LRW split; GRID and plain video folders ship no split and read everything. `options` go to the
    reader (GridReader: mode, clip_frames). Raises ValueError naming the path and the expected
    structure when the layout is unknown or no clip is found.
    """
    if layout == "auto":
        layout = detect_layout(root, split)
    elif layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} for {root}: expected auto or one of {LAYOUTS}")
    if not Path(root).exists():
        raise FileNotFoundError(f"dataset path not found: {root}")
    if layout == "lrw":
        return LRWFramesReader(root, split=split, **options)
    if layout == "lrw-mp4":
        return LRWVideoReader(root, split=split, **options)
    if layout == "grid":
        return GridReader(root, **options)
    return VideoFolderReader(root, **options)
