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
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from factorflow.face.align import (
    TEMPLATE,
    alignment_transforms,
    smooth_track,
    transform_points,
    warp,
)
from factorflow.face.landmarks import NUM_LANDMARKS, FaceTracker, five_points, mouth_centre
from factorflow.images import save_png
from factorflow.io import STORAGE_FULL, OutputExistsError, atomic_dir, has_content

logger = logging.getLogger(__name__)

FORMAT = "factorflow-prepare/1"
LRW_FPS = 25.0


@dataclass(frozen=True)
class Segment:
    """A labelled stretch [start, stop) of a video's frames (stop None: to the end)."""

    word: str
    start: int = 0
    stop: int | None = None


@dataclass
class VideoReport:
    """What happened to one input video.

    segments_dropped: labelled segments (e.g. GRID words) without enough frames with a face.
    mouth_jitter_px: spread of the mouth centre (midpoint of the mouth corners, raw landmarks) in
    crop pixels over the written frames, sqrt(var_x + var_y). Small means a steady crop.
    """

    source: str
    frames: int = 0
    detected: int = 0
    interpolated: int = 0
    dropped: int = 0
    clips: list[dict] = field(default_factory=list)
    fps: float = 0.0
    frame_size: tuple[int, int] = (0, 0)
    segments_dropped: int = 0
    mouth_jitter_px: float = float("nan")
    error: str | None = None

    @property
    def detection_rate(self) -> float:
        return self.detected / self.frames if self.frames else 0.0

    def line(self) -> str:
        if self.error:
            return f"{self.source}: FAILED: {self.error}"
        return (
            f"{self.source}: {len(self.clips)} clips, face in {self.detected}/{self.frames} "
            f"frames ({100 * self.detection_rate:.1f}%), {self.interpolated} interpolated, "
            f"{self.dropped} dropped, mouth jitter {self.mouth_jitter_px:.2f} px"
        )


@dataclass
class PrepareSummary:
    """All video reports of a `prepare` run."""

    out: str
    reports: list[VideoReport]

    @property
    def failed(self) -> list[VideoReport]:
        return [r for r in self.reports if r.error]

    @property
    def num_clips(self) -> int:
        return sum(len(r.clips) for r in self.reports)

    def text(self) -> str:
        head = (
            f"wrote {self.num_clips} clips from {len(self.reports) - len(self.failed)} of "
            f"{len(self.reports)} videos to {self.out}"
        )
        return "\n".join([head, *(r.line() for r in self.reports)])

    def nothing_written(self, source: str | os.PathLike) -> ValueError:
        """The one-line error of a run that wrote no clip (its output is not created)."""
        failed = self.failed
        if not failed:
            why = f"none of its {len(self.reports)} videos gave a clip"
        elif len(failed) == 1:
            why = failed[0].error
        else:
            why = f"all {len(failed)} videos failed, e.g. {failed[0].source}: {failed[0].error}"
        return ValueError(f"no clip written from {source}: {why}")


@dataclass(frozen=True)
class _Settings:
    size: int
    frames: int | None
    min_frames: int
    max_gap_s: float
    smooth_s: float
    static: bool


def safe_word(name: str) -> str:
    """A folder/file-name-safe word label: runs of other characters become '-'."""
    word = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")
    if not word:
        raise ValueError(f"cannot make a word label from {name!r}")
    return word


def next_clip_number(word_dir: Path) -> int:
    """One past the largest clip number among WORD_{clip}_{frame} images in `word_dir`."""
    pattern = re.compile(rf"^{re.escape(word_dir.name)}_(\d+)_\d+\.(?:png|jpe?g)$", re.IGNORECASE)
    if not word_dir.is_dir():
        return 0
    numbers = [int(m[1]) for e in os.scandir(word_dir) if (m := pattern.match(e.name))]
    return max(numbers, default=-1) + 1


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


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs [start, stop) of True in a bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _plan_clips(
    usable: np.ndarray, segments: Sequence[Segment] | None, word: str, settings: _Settings
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


def _process(
    job: PrepareJob,
    out_dir: Path,
    settings: _Settings,
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

    plan = _plan_clips(usable, job.segments, job.word, settings)
    if job.segments is not None:
        report.segments_dropped = len(job.segments) - len(plan)
    if not plan:
        raise ValueError(
            f"no clip of at least {settings.min_frames} frames with a face in {source} "
            f"(face in {report.detected}/{report.frames} frames)"
        )
    clips = []
    for clip_word, start, stop in plan:
        word_dir = out_dir / job.split / clip_word
        key = (job.split, clip_word)
        if key not in clip_numbers:
            clip_numbers[key] = next_clip_number(word_dir)
        clips.append((word_dir, f"{clip_word}_{clip_numbers[key]:05d}", start, stop))
        clip_numbers[key] += 1
        report.clips.append(
            {
                "split": job.split,
                "word": clip_word,
                "clip": clip_numbers[key] - 1,
                "speaker": job.speaker,
                "source": source,
                "start_frame": int(start),
                "frames": int(stop - start),
                "fps": fps,
            }
        )
    try:
        _write_clips(job, clips, landmarks, matrices, bridged, report, settings)
    except BaseException:
        # A half-written clip would still be indexed by listing files: remove what was written.
        for word_dir, name, _, _ in clips:
            for path in word_dir.glob(f"{name}_*.png"):
                path.unlink()
            (word_dir / f"{name}.npz").unlink(missing_ok=True)
        raise
    return report


def _write_clips(
    job: PrepareJob,
    clips: list[tuple[Path, str, int, int]],
    landmarks: np.ndarray,
    matrices: np.ndarray,
    bridged: np.ndarray,
    report: VideoReport,
    settings: _Settings,
) -> None:
    """Pass two: warp and save the frames of every planned clip, then each clip's npz."""
    owners: dict[int, list[tuple[Path, str]]] = defaultdict(list)
    for word_dir, name, start, stop in clips:
        word_dir.mkdir(parents=True, exist_ok=True)
        for t in range(start, stop):
            owners[t].append((word_dir, f"{name}_{t - start:02d}.png"))
    last = max(stop for *_, stop in clips)
    for t, frame in enumerate(job.open_frames()):
        if t >= last:
            break
        if t in owners:
            crop = warp(frame, matrices[t], settings.size)
            for word_dir, file_name in owners[t]:
                save_png(crop, word_dir / file_name)

    centres = []
    for word_dir, name, start, stop in clips:
        span = slice(start, stop)
        crop_landmarks = transform_points(landmarks[span], matrices[span])
        centres.append(mouth_centre(crop_landmarks))
        arrays = {
            "landmarks": landmarks[span].astype(np.float32),
            "landmarks_crop": crop_landmarks.astype(np.float32),
            "matrices": matrices[span],
            "interpolated": bridged[span],
            "frame_indices": np.arange(start, stop),
            "source": np.array(report.source),
            "fps": np.array(report.fps),
            "frame_size": np.array(report.frame_size),
            "size": np.array(settings.size),
        }
        # inside the dataset's staging folder, which appears whole (atomic_dir) or not at all
        np.savez_compressed(word_dir / f"{name}.npz", **arrays)
    report.mouth_jitter_px = float(np.sqrt(np.concatenate(centres).var(axis=0).sum()))


def _settings(
    size: int,
    frames: int | None,
    min_frames: int | None,
    max_gap_s: float,
    smooth_s: float,
    static: bool,
) -> _Settings:
    if size < 8:
        raise ValueError(f"crop size must be >= 8 pixels, got {size}")
    if frames is not None and frames < 1:
        raise ValueError(f"frames per clip must be >= 1 or None, got {frames}")
    if min_frames is None:
        min_frames = max(1, (frames or 2) // 2)
    return _Settings(size, frames, min_frames, max_gap_s, smooth_s, static)


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
    settings = _settings(size, frames, min_frames, max_gap_s, smooth_s, static)
    job = PrepareJob(
        str(path),
        split,
        safe_word(word or path.stem),
        speaker,
        None if segments is None else tuple(segments),
    )
    return _process(job, Path(out_dir), settings, clip_numbers={})


def _split_readers(source: Path, layout: str) -> list:
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
        for reader in _split_readers(source, layout):
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
            for reader in _split_readers(source, layout)
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
    settings = _settings(size, frames, min_frames, max_gap_s, smooth_s, static)
    jobs = plan_jobs(source, layout, frames, split)
    with atomic_dir(out, replace=overwrite) as staging:
        reports = []
        clip_numbers: dict[tuple[str, str], int] = {}
        for job in progress(jobs) if progress else jobs:
            try:
                report = _process(job, staging, settings, clip_numbers)
            except (ValueError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno in STORAGE_FULL:
                    raise  # the output's disk, not this video: every later one would fail too
                logger.warning("skipping %s: %s", job.source, exc)
                report = VideoReport(source=job.source, error=str(exc))
            reports.append(report)
        summary = PrepareSummary(str(out), reports)
        if summary.num_clips == 0:
            raise summary.nothing_written(source)
        _write_meta(staging / "meta.json", summary, settings)
    return summary


def _write_meta(path: Path, summary: PrepareSummary, settings: _Settings) -> None:
    clips = [clip for report in summary.reports for clip in report.clips]
    meta = {
        "format": FORMAT,
        "size": settings.size,
        "frames": settings.frames,
        "template": TEMPLATE.tolist(),
        "words": sorted({c["word"] for c in clips}),
        "speakers": sorted({c["speaker"] for c in clips if c["speaker"]}),
        "clips": clips,
        "videos": [
            {k: _finite_or_none(v) for k, v in asdict(r).items() if k != "clips"}
            for r in summary.reports
        ],
    }
    text = json.dumps(meta, indent=1, allow_nan=False)
    path.write_text(text)


def _finite_or_none(value):
    # JSON has no NaN: a failed video's unmeasured jitter is written as null.
    return None if isinstance(value, float) and not np.isfinite(value) else value
