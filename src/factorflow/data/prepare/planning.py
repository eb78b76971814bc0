"""What `prepare` will do: the sources of an input (one `PrepareJob` each, from its reader layout),
the checked settings, and which frame ranges of a source become clips."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "LRW_FPS",
    "PrepareJob",
    "Segment",
    "Settings",
    "make_settings",
    "plan_clips",
    "plan_jobs",
    "runs",
    "safe_word",
]

LRW_FPS = 25.0


@dataclass(frozen=True)
class Segment:
    """A labelled stretch [start, stop) of a video's frames (stop None: to the end)."""

    word: str
    start: int = 0
    stop: int | None = None


@dataclass(frozen=True)
class PrepareJob:
    """One source to prepare: a video file, or a clip's frame images (`files`)."""

    source: str
    split: str
    word: str
    speaker: str | None
    segments: tuple[Segment, ...] | None
    fps: float | None = None
    files: tuple[str, ...] = ()

    def open_frames(self) -> Iterator[np.ndarray]:
        from factorflow.data.readers import load_image
        from factorflow.data.video_io import iter_video

        if self.files:
            return (load_image(f) for f in self.files)
        return iter_video(self.source)


@dataclass(frozen=True)
class Settings:
    """The checked options of one `prepare` run (see `prepare_video`)."""

    size: int
    frames: int | None
    min_frames: int
    max_gap_s: float
    smooth_s: float
    static: bool


def make_settings(
    size: int,
    frames: int | None,
    min_frames: int | None,
    max_gap_s: float,
    smooth_s: float,
    static: bool,
) -> Settings:
    """`Settings` from `prepare`'s options, each checked (min_frames None: frames // 2)."""
    if size < 8:
        raise ValueError(f"crop size must be >= 8 pixels, got {size}")
    if frames is not None and frames < 1:
        raise ValueError(f"frames per clip must be >= 1 or None, got {frames}")
    if min_frames is None:
        min_frames = max(1, (frames or 2) // 2)
    return Settings(size, frames, min_frames, max_gap_s, smooth_s, static)


def safe_word(name: str) -> str:
    """A folder/file-name-safe word label: runs of other characters become '-'."""
    word = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")
    if not word:
        raise ValueError(f"cannot make a word label from {name!r}")
    return word


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs [start, stop) of True in a bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def plan_clips(
    usable: np.ndarray, segments: Sequence[Segment] | None, word: str, settings: Settings
) -> list[tuple[str, int, int]]:
    """Output clips as (word, start, stop) source-frame ranges inside usable runs.

    Unlabelled video is cut into consecutive clips of `settings.frames` frames (a shorter tail
    kept if it has at least `min_frames`). A labelled segment becomes one clip: its longest
    usable stretch, if that has at least `min_frames` frames.
    """
    clips = []
    if segments is None:
        for start, stop in runs(usable):
            step = settings.frames or stop - start
            for a in range(start, stop, step):
                b = min(a + step, stop)
                if b - a >= settings.min_frames:
                    clips.append((word, a, b))
        return clips
    for segment in segments:
        stop = len(usable) if segment.stop is None else min(segment.stop, len(usable))
        pieces = [
            (a + segment.start, b + segment.start) for a, b in runs(usable[segment.start : stop])
        ]
        if not pieces:
            continue
        a, b = max(pieces, key=lambda p: p[1] - p[0])
        if b - a >= settings.min_frames:
            clips.append((segment.word, a, b))
    return clips


def split_readers(source: Path, layout: str) -> list:
    """One reader per LRW split present under `source` (or the split folder `source` is)."""
    from factorflow.data.readers import SPLITS, open_reader

    readers = {}
    for split in SPLITS:
        try:
            reader = open_reader(source, layout, split)
        except ValueError:
            continue
        readers.setdefault(reader.split, reader)
    if not readers:
        open_reader(source, layout)  # raises the reader's own message for what it expected
    return list(readers.values())


def plan_jobs(
    source: str | os.PathLike, layout: str = "auto", frames: int | None = 16, split: str = "train"
) -> list[PrepareJob]:
    """The sources `prepare` will process, from the input's layout (see factorflow.data.readers).

    LRW layouts keep their splits and words, one output clip per input clip; GRID gives one clip
    per aligned word (a `frames`-frame window centred on it), speaker s{N}; plain videos are cut
    into `frames`-frame clips under WORD = their stem (also the speaker), in `split`.
    """
    from factorflow.data.readers import GridReader, detect_layout, open_reader

    source = Path(source)
    if layout == "auto":
        layout = detect_layout(source, split)
    if layout == "lrw":
        jobs = []
        for reader in split_readers(source, layout):
            meta = json.loads(reader.meta_path.read_text()) if reader.meta_path else {}
            fps = float(meta.get("fps", LRW_FPS))
            jobs += [
                PrepareJob(r.path, r.split, r.word, r.speaker, (Segment(r.word),), fps, r.files)
                for r in reader.refs
            ]
        return jobs
    if layout == "lrw-mp4":
        return [
            PrepareJob(r.path, r.split, r.word, r.speaker, (Segment(r.word),))
            for reader in split_readers(source, layout)
            for r in reader.refs
        ]
    if layout == "grid":
        by_video: dict[str, list] = defaultdict(list)
        for ref in GridReader(source, clip_frames=frames).refs:
            by_video[ref.path].append(ref)
        return [
            PrepareJob(
                path,
                split,
                refs[0].speaker,
                refs[0].speaker,
                tuple(Segment(r.word, r.start, r.stop) for r in refs),
            )
            for path, refs in by_video.items()
        ]
    reader = open_reader(source, layout, split)
    return [
        PrepareJob(r.path, split, safe_word(Path(r.path).stem), r.speaker, None)
        for r in reader.refs
    ]
