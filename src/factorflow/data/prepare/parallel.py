"""`prepare` over a pool of worker processes, resumable: the same output as the sequential run.

Each source (a video, or an LRW clip) is one job. A worker process (its own MediaPipe instance,
created per job as in the sequential path) prepares the job into a private folder; the parent takes
the results back in job order and moves the clips into the dataset, numbered exactly as
`prepare` numbers them, then appends the job's report to a manifest. The dataset is assembled in
`.{out}.partial` beside `out` and moved into place (atomically) when every job is done:

    .{out}.partial/manifest.jsonl   one line per finished job: {"job": i, "report": {...}}
                                    (a failed job is finished too: its error is the report's)
    .{out}.partial/settings.json    the run's settings: a rerun with others is refused

A rerun with the same `out` after a crash or an interrupt reads the manifest, skips the jobs it
lists and goes on; a job cut off half-way is redone from scratch. Rejected sources and why are in
the summary's reports (and meta.json's "videos").
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from factorflow.data.prepare.pipeline import process_job
from factorflow.data.prepare.planning import PrepareJob, Settings, make_settings, plan_jobs
from factorflow.data.prepare.reports import PrepareSummary, VideoReport, write_meta
from factorflow.io import STORAGE_FULL, OutputExistsError, atomic_dir, has_content

__all__ = ["MANIFEST", "prepare_parallel"]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"


def _run_job(task: tuple[int, PrepareJob, str, Settings]) -> tuple[int, VideoReport]:
    """Worker: prepare one job into its own folder, clips numbered from 0 per (split, word)."""
    i, job, folder, settings = task
    try:
        report = process_job(job, Path(folder), settings, clip_numbers={})
    except (ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in STORAGE_FULL:
            raise  # the output's disk, not this source: every later one would fail too
        report = VideoReport(source=job.source, error=str(exc))
    return i, report


def _move_clips(report: VideoReport, job_dir: Path, out: Path, numbers: Counter) -> None:
    """Move a finished job's clips into `out`, renumbered after the clips already there."""
    for clip in report.clips:
        split, word, old = clip["split"], clip["word"], clip["clip"]
        new = numbers[(split, word)]
        numbers[(split, word)] += 1
        src, dst = job_dir / split / word, out / split / word
        dst.mkdir(parents=True, exist_ok=True)
        for t in range(clip["frames"]):
            os.replace(src / f"{word}_{old:05d}_{t:02d}.png", dst / f"{word}_{new:05d}_{t:02d}.png")
        os.replace(src / f"{word}_{old:05d}.npz", dst / f"{word}_{new:05d}.npz")
        clip["clip"] = new


def _report_from(record: dict) -> VideoReport:
    report = VideoReport(**{**record, "frame_size": tuple(record.get("frame_size") or (0, 0))})
    if report.mouth_jitter_px is None:
        report.mouth_jitter_px = float("nan")
    return report


def _read_manifest(path: Path) -> dict[int, VideoReport]:
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                break  # a line cut off by a crash: that job is redone
            done[int(record["job"])] = _report_from(record["report"])
    return done


def prepare_parallel(
    source: str | os.PathLike,
    out: str | os.PathLike,
    layout: str = "auto",
    size: int = 64,
    frames: int | None = 16,
    split: str = "train",
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[Iterable, int], Iterable] | None = None,
    min_frames: int | None = None,
    max_gap_s: float = 0.2,
    smooth_s: float = 0.04,
    static: bool = False,
) -> PrepareSummary:
    """`prepare` (same arguments and output) with `workers` processes (None: every core).

    Resumes an interrupted run into the same `out`. `progress(results, total)` may wrap the
    stream of finished jobs (e.g. tqdm). Raises ValueError when no clip at all was written.
    """
    out = Path(out)
    if has_content(out) and not overwrite:
        raise OutputExistsError(
            f"output {out} exists and is not empty (pass --force to replace it)"
        )
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    settings = make_settings(size, frames, min_frames, max_gap_s, smooth_s, static)
    jobs = plan_jobs(source, layout, frames, split)
    partial = out.parent / f".{out.name}.partial"
    wanted = {"source": str(source), "layout": layout, "split": split, **asdict(settings)}
    settings_file = partial / "settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != wanted:
        if not overwrite:
            raise ValueError(
                f"{partial} holds an unfinished prepare with other settings "
                f"({settings_file}): pass overwrite to start again"
            )
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(wanted))
    scratch = partial / ".jobs"
    shutil.rmtree(scratch, ignore_errors=True)
    manifest = partial / MANIFEST
    done = _read_manifest(manifest)
    if done:
        logger.info("resuming %s: %d of %d jobs already done", partial, len(done), len(jobs))
    numbers: Counter = Counter()
    for i in sorted(done):
        for clip in done[i].clips:
            numbers[(clip["split"], clip["word"])] += 1
    todo = [(i, job, str(scratch / f"{i:07d}"), settings) for i, job in enumerate(jobs)]
    todo = [task for task in todo if task[0] not in done]

    results = _results(todo, workers)
    with open(manifest, "a") as log:
        for i, report in progress(results, len(todo)) if progress else results:
            if report.error:
                logger.warning("skipping %s: %s", report.source, report.error)
            else:
                _move_clips(report, scratch / f"{i:07d}", partial, numbers)
            shutil.rmtree(scratch / f"{i:07d}", ignore_errors=True)
            log.write(json.dumps({"job": i, "report": _jsonable(report)}) + "\n")
            log.flush()
            done[i] = report
    shutil.rmtree(scratch, ignore_errors=True)
    summary = PrepareSummary(str(out), [done[i] for i in sorted(done)])
    if summary.num_clips == 0:
        raise summary.nothing_written(source)
    write_meta(partial / "meta.json", summary, settings)
    manifest.unlink()
    settings_file.unlink()
    with atomic_dir(out, replace=overwrite) as staging:
        for entry in partial.iterdir():
            os.replace(entry, staging / entry.name)
    partial.rmdir()
    return summary


def _results(todo: Sequence, workers: int) -> Iterator[tuple[int, VideoReport]]:
    """Finished jobs in job order (clip numbers must not depend on which worker was faster)."""
    if workers == 1 or len(todo) <= 1:
        yield from map(_run_job, todo)
        return
    # spawn: MediaPipe and PyAV hold threads that fork would copy half-alive.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_run_job, todo)


def _jsonable(report: VideoReport) -> dict:
    record = asdict(report)
    jitter = record["mouth_jitter_px"]
    record["mouth_jitter_px"] = None if jitter != jitter else jitter  # NaN is not JSON
    return record
