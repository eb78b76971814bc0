"""How `prepare` writes a source's clips: numbered after those already in each WORD folder, the
warped frames (pass two over the video) and each clip's npz of landmarks and transforms; a clip
that fails half-way is removed."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from factorflow.data.prepare.planning import PrepareJob, Settings
from factorflow.data.prepare.reports import VideoReport
from factorflow.face.align import transform_points, warp
from factorflow.face.landmarks import mouth_centre
from factorflow.images import save_png

__all__ = ["ClipPlace", "next_clip_number", "place_clips", "write_clips"]

# Where a clip goes: (WORD folder, file stem WORD_{clip:05d}, source start frame, stop frame).
ClipPlace = tuple[Path, str, int, int]


def next_clip_number(word_dir: Path) -> int:
    """One past the largest clip number among WORD_{clip}_{frame} images in `word_dir`."""
    pattern = re.compile(rf"^{re.escape(word_dir.name)}_(\d+)_\d+\.(?:png|jpe?g)$", re.IGNORECASE)
    if not word_dir.is_dir():
        return 0
    numbers = [int(m[1]) for e in os.scandir(word_dir) if (m := pattern.match(e.name))]
    return max(numbers, default=-1) + 1


def place_clips(
    job: PrepareJob,
    plan: list[tuple[str, int, int]],
    out_dir: Path,
    clip_numbers: dict[tuple[str, str], int],
    fps: float,
) -> tuple[list[ClipPlace], list[dict]]:
    """Each planned (word, start, stop) clip's place and its meta.json entry; `clip_numbers`: the
    next clip number per (split, word), updated."""
    places, entries = [], []
    for clip_word, start, stop in plan:
        word_dir = out_dir / job.split / clip_word
        key = (job.split, clip_word)
        if key not in clip_numbers:
            clip_numbers[key] = next_clip_number(word_dir)
        places.append((word_dir, f"{clip_word}_{clip_numbers[key]:05d}", start, stop))
        clip_numbers[key] += 1
        entries.append(
            {
                "split": job.split,
                "word": clip_word,
                "clip": clip_numbers[key] - 1,
                "speaker": job.speaker,
                "source": job.source,
                "start_frame": int(start),
                "frames": int(stop - start),
                "fps": fps,
            }
        )
    return places, entries


def write_clips(
    job: PrepareJob,
    clips: list[ClipPlace],
    landmarks: np.ndarray,
    matrices: np.ndarray,
    bridged: np.ndarray,
    report: VideoReport,
    settings: Settings,
) -> None:
    """Pass two: warp and save the frames of every planned clip, then each clip's npz (and the
    report's mouth jitter). On any failure what was written of these clips is removed and the
    error raised."""
    try:
        _write_frames(job, clips, matrices, settings.size)
        _write_arrays(clips, landmarks, matrices, bridged, report, settings.size)
    except BaseException:
        # A half-written clip would still be indexed by listing files: remove what was written.
        for word_dir, name, _, _ in clips:
            for path in word_dir.glob(f"{name}_*.png"):
                path.unlink()
            (word_dir / f"{name}.npz").unlink(missing_ok=True)
        raise


def _write_frames(job: PrepareJob, clips: list[ClipPlace], matrices: np.ndarray, size: int) -> None:
    """One read of the source: each frame a clip holds, warped to its crop and saved."""
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
            crop = warp(frame, matrices[t], size)
            for word_dir, file_name in owners[t]:
                save_png(crop, word_dir / file_name)


def _write_arrays(
    clips: list[ClipPlace],
    landmarks: np.ndarray,
    matrices: np.ndarray,
    bridged: np.ndarray,
    report: VideoReport,
    size: int,
) -> None:
    """Each clip's npz (landmarks, transforms, provenance); the report's mouth jitter."""
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
            "size": np.array(size),
        }
        # inside the dataset's staging folder, which appears whole (atomic_dir) or not at all
        np.savez_compressed(word_dir / f"{name}.npz", **arrays)
    report.mouth_jitter_px = float(np.sqrt(np.concatenate(centres).var(axis=0).sum()))
