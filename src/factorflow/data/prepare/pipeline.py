"""Real video -> aligned face crops in LRW frame layout, with landmarks and transforms.

Each video is read twice, streaming: pass one finds the largest face's landmarks in every frame;
then short detection gaps are interpolated, long ones dropped, the five alignment points are
smoothed over time and a similarity transform per frame is fitted; pass two warps the frames and
writes the crops. Memory stays flat however long the video is.

Output for a clip: OUT/{split}/WORD/WORD_{clip:05d}_{frame:02d}.png (frame counted from 0) and
OUT/{split}/WORD/WORD_{clip:05d}.npz holding
    landmarks       float32 [T, 478, 2]  source pixel coordinates (interpolated where flagged)
    landmarks_crop  float32 [T, 478, 2]  the same points in crop pixel coordinates
    matrices        float64 [T, 2, 3]    source -> crop transforms (paste back with their inverse)
    interpolated    bool [T]             frames whose face was missed and interpolated
    frame_indices   int64 [T]            frame numbers in the source video
    source (str), fps (float), frame_size ([H, W] of the source), size (crop side)
`prepare` also writes OUT/meta.json ("format": "factorflow-prepare/1") listing every clip with its
split, word, clip number, speaker and source, plus a report per video; the LRW reader takes speaker
labels from it.

This module is the pipeline per source (detect -> track -> plan -> write) and `prepare` over an
input; `planning` says which sources and frames become clips, `writing` writes them and
`reports` says what happened.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from factorflow.data.prepare.planning import (
    PrepareJob,
    Segment,
    Settings,
    make_settings,
    plan_clips,
    plan_jobs,
    runs,
    safe_word,
)
from factorflow.data.prepare.reports import PrepareSummary, VideoReport, write_meta
from factorflow.data.prepare.writing import place_clips, write_clips
from factorflow.face.align import alignment_transforms, smooth_track
from factorflow.face.landmarks import NUM_LANDMARKS, FaceTracker, five_points
from factorflow.io import STORAGE_FULL, OutputExistsError, atomic_dir, has_content

__all__ = [
    "FaceTrack",
    "fill_gaps",
    "interpolate_missing",
    "prepare",
    "prepare_video",
    "process_job",
    "track_faces",
]

logger = logging.getLogger(__name__)


def fill_gaps(found: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Which frames are usable, given which have a face (`found`, bool [N]).

    Interior runs of at most `max_gap` missing frames are bridged (returned as `bridged`);
    longer runs, and misses before the first or after the last detection, are not usable.
    Returns (usable bool [N], bridged bool [N]).
    """
    usable = found.copy()
    hits = np.flatnonzero(found)
    for a, b in zip(hits[:-1], hits[1:], strict=True):
        if 1 < b - a <= max_gap + 1:
            usable[a + 1 : b] = True
    return usable, usable & ~found


def interpolate_missing(landmarks: np.ndarray, bridged: np.ndarray) -> np.ndarray:
    """Linearly interpolate landmarks [N, K, 2] in time over the `bridged` frames."""
    out = landmarks.copy()
    known = np.flatnonzero(~np.isnan(landmarks[:, 0, 0]))
    missing = np.flatnonzero(bridged)
    if len(missing):
        flat = landmarks[known].reshape(len(known), -1)
        out[missing] = np.stack(
            [np.interp(missing, known, flat[:, j]) for j in range(flat.shape[1])], axis=1
        ).reshape(len(missing), *landmarks.shape[1:])
    return out


def _detect(job: PrepareJob, report: VideoReport, static: bool) -> np.ndarray:
    """Pass one: landmarks [N, 478, 2] of the largest face per frame (NaN where none)."""
    with FaceTracker(static=static) as tracker:
        detections = []
        for frame in job.open_frames():
            report.frame_size = tuple(frame.shape[:2])
            found = tracker(frame)
            detections.append(np.full((NUM_LANDMARKS, 2), np.nan) if found is None else found)
    return np.stack(detections).astype(np.float64)


class FaceTrack(NamedTuple):
    """Landmarks [N,478,2] (gaps bridged), alignment matrices [N,2,3] (NaN where unusable),
    usable and bridged frames (bool [N]); `detected` counts frames where a face was found."""

    landmarks: np.ndarray
    matrices: np.ndarray
    usable: np.ndarray
    bridged: np.ndarray

    @property
    def detected(self) -> int:
        return int((self.usable & ~self.bridged).sum())


def track_faces(
    landmarks: np.ndarray,
    size: int,
    fps: float,
    max_gap_s: float = 0.2,
    smooth_s: float = 0.04,
    source: str = "video",
) -> FaceTrack:
    """Raw per-frame landmarks (NaN where no face) -> bridged, smoothed, aligned track.

    Short gaps are interpolated, long ones left unusable; the five points are smoothed in time
    before the similarity transforms to the template of a `size` crop are estimated. A video with
    no face at all is an error naming `source`.
    """
    found = ~np.isnan(landmarks[:, 0, 0])
    if not found.any():
        raise ValueError(f"no face found in {source} (checked {len(found)} frames)")
    usable, bridged = fill_gaps(found, max_gap=round(max_gap_s * fps))
    landmarks = interpolate_missing(landmarks, bridged)
    matrices = np.full((len(usable), 2, 3), np.nan)
    for start, stop in runs(usable):
        points = smooth_track(five_points(landmarks[start:stop]), smooth_s * fps)
        matrices[start:stop] = alignment_transforms(points, size)
    return FaceTrack(landmarks, matrices, usable, bridged)


def process_job(
    job: PrepareJob,
    out_dir: Path,
    settings: Settings,
    clip_numbers: dict[tuple[str, str], int],
) -> VideoReport:
    """Detect, align and write one source; `clip_numbers`: next clip number per (split, word)."""
    from factorflow.data.video_io import video_info

    source = job.source
    fps = job.fps or video_info(source).fps
    report = VideoReport(source=source, fps=fps)
    track = track_faces(
        _detect(job, report, settings.static),
        settings.size,
        fps,
        settings.max_gap_s,
        settings.smooth_s,
        source,
    )
    landmarks, matrices, usable, bridged = track
    report.frames, report.detected = len(usable), track.detected
    report.interpolated = int(bridged.sum())
    report.dropped = int((~usable).sum())

    plan = plan_clips(usable, job.segments, job.word, settings)
    if job.segments is not None:
        report.segments_dropped = len(job.segments) - len(plan)
    if not plan:
        raise ValueError(
            f"no clip of at least {settings.min_frames} frames with a face in {source} "
            f"(face in {report.detected}/{report.frames} frames)"
        )
    clips, report.clips = place_clips(job, plan, out_dir, clip_numbers, fps)
    write_clips(job, clips, landmarks, matrices, bridged, report, settings)
    return report


def prepare_video(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: int = 64,
    word: str | None = None,
    split: str = "train",
    frames: int | None = 16,
    speaker: str | None = None,
    segments: Sequence[Segment] | None = None,
    min_frames: int | None = None,
    max_gap_s: float = 0.2,
    smooth_s: float = 0.04,
    static: bool = False,
) -> VideoReport:
    """Align the face of one video file and write its clips into `out_dir` (LRW frame layout).

    Without `segments`, the video is cut into clips of `frames` frames (None: one clip per run
    of usable frames) under WORD = `word`, or the file's stem. With `segments`, each labelled
    segment becomes one clip. Missed faces are interpolated over gaps up to `max_gap_s` seconds
    and dropped beyond; the five alignment points are smoothed with a Gaussian of `smooth_s`
    seconds. Clips shorter than `min_frames` (default frames // 2) are not written. New clips
    are numbered after those already in the WORD folder.

    Raises ValueError naming the file when it has no usable face, FileNotFoundError when missing.
    """
    path = Path(path)
    settings = make_settings(size, frames, min_frames, max_gap_s, smooth_s, static)
    job = PrepareJob(
        str(path),
        split,
        safe_word(word or path.stem),
        speaker,
        None if segments is None else tuple(segments),
    )
    return process_job(job, Path(out_dir), settings, clip_numbers={})


def prepare(
    source: str | os.PathLike,
    out: str | os.PathLike,
    layout: str = "auto",
    size: int = 64,
    frames: int | None = 16,
    split: str = "train",
    overwrite: bool = False,
    progress: Callable[[Sequence[PrepareJob]], Iterable[PrepareJob]] | None = None,
    min_frames: int | None = None,
    max_gap_s: float = 0.2,
    smooth_s: float = 0.04,
    static: bool = False,
) -> PrepareSummary:
    """Prepare every video (or LRW clip) of `source` into the dataset folder `out`.

    `source` is a video file or a folder in one of the reader layouts (`layout` "auto" detects
    it). A source that fails (unreadable, no usable face) is reported and skipped; the rest go
    on. The dataset is assembled in a temporary sibling folder and renamed into place at the
    end, so `out` is never half-written; a non-empty `out` is replaced only with `overwrite`.
    `progress` may wrap the job list (e.g. tqdm). min_frames, max_gap_s, smooth_s and static
    work as in `prepare_video`. Raises ValueError when no clip at all could be written.
    """
    out = Path(out)
    if has_content(out) and not overwrite:
        raise OutputExistsError(
            f"output {out} exists and is not empty (pass --force to replace it)"
        )
    settings = make_settings(size, frames, min_frames, max_gap_s, smooth_s, static)
    jobs = plan_jobs(source, layout, frames, split)
    with atomic_dir(out, replace=overwrite) as staging:
        reports = []
        clip_numbers: dict[tuple[str, str], int] = {}
        for job in progress(jobs) if progress else jobs:
            try:
                report = process_job(job, staging, settings, clip_numbers)
            except (ValueError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno in STORAGE_FULL:
                    raise  # the output's disk, not this video: every later one would fail too
                logger.warning("skipping %s: %s", job.source, exc)
                report = VideoReport(source=job.source, error=str(exc))
            reports.append(report)
        summary = PrepareSummary(str(out), reports)
        if summary.num_clips == 0:
            raise summary.nothing_written(source)
        write_meta(staging / "meta.json", summary, settings)
    return summary
