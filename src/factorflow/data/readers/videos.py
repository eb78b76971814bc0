"""A plain folder of videos (searched recursively), or one video file: one clip per video.

The speaker is the file's stem; there is no word label and no split.
"""

from __future__ import annotations

import os
from pathlib import Path

from factorflow.data.readers.base import ClipRef, Reader
from factorflow.data.video_io import VIDEO_EXTENSIONS

__all__ = ["VideoFolderReader", "find_videos", "is_video"]


def is_video(path: Path) -> bool:
    """Whether `path` has one of the video extensions factorflow reads."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def find_videos(root: Path) -> list[Path]:
    """Video files under `root` (or `root` itself if it is one), sorted by path.

    Hidden files are skipped: they are the temporary names of writes still in progress.
    """
    if root.is_file():
        return [root] if is_video(root) else []
    return sorted(
        p for p in root.rglob("*") if p.is_file() and is_video(p) and not p.name.startswith(".")
    )


class VideoFolderReader(Reader):
    """Every video under ROOT (or the single video ROOT) as one unlabelled clip."""

    layout = "videos"

    def __init__(self, root: str | os.PathLike) -> None:
        root = Path(root)
        base = root.parent if root.is_file() else root
        refs = [
            ClipRef(
                clip_id=str(video.relative_to(base).with_suffix("")),
                path=str(video),
                speaker=video.stem,
            )
            for video in find_videos(root)
        ]
        if not refs:
            raise ValueError(
                f"no videos in {root}: expected files ending in {', '.join(VIDEO_EXTENSIONS)}"
            )
        super().__init__(root, refs)
