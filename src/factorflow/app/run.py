"""The run handler: uploads in, the reenacted video, its lip-sync figures and a plot out.

Plain Python (no Gradio): `layout` wires it to the page, tests call it directly. A mouth flow
(the shipped default) runs `reenact.mouthreenact.reenact_mouth`, streamed, with its own lip-sync
meter; a 64x64 flow model (real-af, demo-af, run folders) runs `reenact.realvideo.reenact_video`.
Their stages are reported through `progress`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from factorflow.app import validate
from factorflow.app.settings import AppSettings
from factorflow.app.sources import ModelCache, model_spec
from factorflow.app.validate import InputError

__all__ = [
    "DETAILS",
    "FIGURES",
    "FORMATS",
    "MOTIONS",
    "MOUTH_STAGES",
    "STAGES",
    "Progress",
    "RunRequest",
    "RunResult",
    "figures_markdown",
    "lip_sync",
    "motion_overrides",
    "new_output_dir",
    "run_mouth_paste",
    "run_reenactment",
]

# progress(fraction done in [0, 1], what is happening)
Progress = Callable[[float, str], None]
MOTIONS = ("r", "residual")
FORMATS = ("mp4", "gif")
# Where each stage starts on the progress bar; pasting back runs from 0.45 to 0.8, frame by frame.
STAGES = {
    "reading the uploads": 0.0,
    "loading the model": 0.1,
    "finding faces and reenacting": 0.15,
    "pasting the mouth back": 0.45,
    "writing the video": 0.8,
    "measuring lip sync": 0.9,
}
# The same for a mouth flow: reenacting (and measuring) runs from 0.2 to 0.95, chunk by chunk.
MOUTH_STAGES = {
    "reading the uploads": 0.0,
    "loading the model": 0.05,
    "finding faces in driver and target": 0.1,
    "reenacting and measuring lip sync": 0.2,
    "writing the gif": 0.95,
}


@dataclass(frozen=True)
class RunRequest:
    target: str | Path | None  # image or video
    driver: str | Path | None  # video
    model: Path  # a shipped model or a run folder
    motion: str = "r"  # af.motion, for models that take it
    side_by_side: bool = False  # driver | target | result
    fmt: str = "mp4"  # of the download


@dataclass
class RunResult:
    video: Path  # mp4 played in the page
    download: Path  # mp4 or gif, as asked
    frames: int
    fps: float
    metrics: dict[str, Any]
    driver_opening: np.ndarray  # [T] inner-lip opening per frame (NaN: no face)
    output_opening: np.ndarray
    plot: Path
    seconds: float


def new_output_dir(workdir: Path, kind: str, keep: int = 8) -> Path:
    """A fresh workdir/KIND-xxxx folder; older ones beyond the `keep` newest are removed (Gradio
    serves copies from its own cache, so the app's work folder stays small)."""
    import shutil

    old = sorted(workdir.glob(f"{kind}-*"), key=lambda p: p.stat().st_mtime)
    for path in old[: max(0, len(old) - keep + 1)]:
        shutil.rmtree(path, ignore_errors=True)
    out = workdir / f"{kind}-{uuid.uuid4().hex[:12]}"
    out.mkdir(parents=True)
    return out


def _stage(progress: Progress, name: str, stages: dict[str, float] = STAGES) -> None:
    progress(stages[name], name)


def _per_frame(progress: Progress, start: float, stop: float, what: str, unit: str = ""):
    """A `reenact_video(progress=...)` hook moving the bar from start to stop, frame by frame
    (or, for `reenact_mouth`, chunk by chunk: `unit` names them)."""

    def wrap(items: Iterable, total: int) -> Iterator:
        for i, item in enumerate(items):
            done = f"{what} ({unit}{i + 1}/{total})"
            progress(start + (stop - start) * i / max(total, 1), done)
            yield item

    return wrap


def motion_overrides(model: Path, motion: str) -> tuple[str, ...]:
    """The use-time keys for a motion mode: af.motion when the model takes it."""
    if motion not in MOTIONS:
        raise InputError(f"motion {motion!r}: choose one of {', '.join(MOTIONS)}")
    if "af.motion" in model_spec(model).use_time_keys:
        return (f"af.motion={motion}",)
    if motion != "r":
        raise InputError(f"model {model.name} takes no motion mode: choose r")
    return ()


def run_reenactment(
    request: RunRequest,
    settings: AppSettings,
    models: ModelCache,
    progress: Progress = lambda fraction, what: None,
) -> RunResult:
    """Validate the uploads, reenact, write the video(s), measure lip sync. Bad input (a file
    that is not what it should be, too large or long or small, a clip without a face) raises
    InputError with one line naming the file."""
    from factorflow.reenact.media import write_clip
    from factorflow.reenact.realvideo import reenact_video

    if request.fmt not in FORMATS:
        raise InputError(f"format {request.fmt!r}: choose one of {', '.join(FORMATS)}")
    if model_spec(request.model).pipeline == "mouth-paste":
        return run_mouth_paste(request, settings, models, progress)
    start = time.perf_counter()
    _stage(progress, "reading the uploads")
    driver, fps, driver_path = validate.driver_clip(request.driver, settings)
    target = validate.target_face(request.target, settings)
    target_path = Path(str(request.target))
    _stage(progress, "loading the model")
    model, config = models.get(request.model, motion_overrides(request.model, request.motion))
    _stage(progress, "finding faces and reenacting")
    paste = _per_frame(
        progress,
        STAGES["pasting the mouth back"],
        STAGES["writing the video"],
        "pasting the mouth back",
    )
    try:
        result = reenact_video(
            model, config, driver, target, fps=fps, device=models.device, progress=paste
        )
    except ValueError as exc:  # e.g. "no face found in driver (checked 12 frames)"
        names = f"driver {driver_path.name}, target {target_path.name}"
        raise InputError(f"{exc} ({names})") from None
    _stage(progress, "writing the video")
    shown = result.side_by_side if request.side_by_side else result.frames
    out = new_output_dir(settings.workdir, "run")
    name = f"{target_path.stem}_says_{driver_path.stem}"
    video = write_clip(out / f"{name}.mp4", shown, fps, audio_from=driver_path)
    download = video if request.fmt == "mp4" else write_clip(out / f"{name}.gif", shown, fps)
    _stage(progress, "measuring lip sync")
    metrics, driver_opening, output_opening = lip_sync(driver, result, target)
    from factorflow.app.plot import opening_plot

    plot = opening_plot(driver_opening, output_opening, fps, out / "opening.png")
    progress(1.0, "done")
    return RunResult(
        video=video,
        download=download,
        frames=len(shown),
        fps=fps,
        metrics=metrics,
        driver_opening=driver_opening,
        output_opening=output_opening,
        plot=plot,
        seconds=time.perf_counter() - start,
    )


def run_mouth_paste(
    request: RunRequest,
    settings: AppSettings,
    models: ModelCache,
    progress: Progress = lambda fraction, what: None,
) -> RunResult:
    """`run_reenactment` with a mouth-paste model (the mouth flow): the uploads are checked as
    for any model (without keeping their frames), then `reenact_mouth` streams them at the
    target's own resolution, measuring lip sync on every output frame
    (`metrics.lipsync.LipSyncMeter`)."""
    from factorflow.reenact.mouthreenact import reenact_mouth

    start = time.perf_counter()
    _stage(progress, "reading the uploads", MOUTH_STAGES)
    _, fps, driver_path = validate.driver_clip(request.driver, settings, keep=False)
    validate.target_face(request.target, settings, keep=False)
    target_path = Path(str(request.target))
    overrides = motion_overrides(request.model, request.motion)  # a mouth flow takes none
    _stage(progress, "loading the model", MOUTH_STAGES)
    model, _ = models.get(request.model, overrides)
    _stage(progress, "finding faces in driver and target", MOUTH_STAGES)
    out = new_output_dir(settings.workdir, "run")
    name = f"{target_path.stem}_says_{driver_path.stem}"
    video = out / f"{name}.mp4"
    chunks = _per_frame(
        progress,
        MOUTH_STAGES["reenacting and measuring lip sync"],
        MOUTH_STAGES["writing the gif"],
        "reenacting and measuring lip sync",
        unit="frame chunk ",
    )
    try:
        summary = reenact_mouth(
            driver_path,
            target_path,
            video,
            model.painter(),
            model.crop_size,
            side_by_side=request.side_by_side,
            measure=True,
            progress=chunks,
        )
    except (ValueError, FileNotFoundError) as exc:  # e.g. "no face found in driver PATH (...)"
        line = str(exc).replace(str(driver_path), driver_path.name)
        raise InputError(line.replace(str(target_path), target_path.name)) from None
    download = video
    if request.fmt == "gif":
        _stage(progress, "writing the gif", MOUTH_STAGES)
        download = _gif_of(video, out / f"{name}.gif", fps)
    rows = summary.rows
    driver_opening = np.array([r["driver"] for r in rows], float)
    output_opening = np.array([r["output"] for r in rows], float)
    from factorflow.app.plot import opening_plot

    plot = opening_plot(driver_opening, output_opening, fps, out / "opening.png")
    progress(1.0, "done")
    return RunResult(
        video=video,
        download=download,
        frames=summary.frames,
        fps=fps,
        metrics=summary.metrics or {},
        driver_opening=driver_opening,
        output_opening=output_opening,
        plot=plot,
        seconds=time.perf_counter() - start,
    )


def _gif_of(video: Path, out: Path, fps: float) -> Path:
    """The mp4 written by the pipeline, re-encoded frame by frame as a gif."""
    from factorflow.data.video_io import iter_video
    from factorflow.reenact.streaming import VideoSink

    sink = VideoSink(out, fps)
    try:
        for frame in iter_video(video):
            sink.write(frame)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    return out


def lip_sync(driver: np.ndarray, result, target: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """The real-video pipeline's lip-sync figures, and the driver's and output's inner-lip
    opening per frame (MediaPipe landmarks; NaN where the output shows no face)."""
    from factorflow.face.landmarks import detect_landmarks, inner_lip_opening
    from factorflow.metrics.lipsync import lip_sync_metrics

    metrics = lip_sync_metrics(driver, result, target)
    output = inner_lip_opening(detect_landmarks(result.frames))
    return metrics, inner_lip_opening(result.driver_track.landmarks), output


# Labels of the lip-sync figures, in the order shown (a model's pipeline gives some of them);
# keys in neither FIGURES nor DETAILS follow under their own names. Openings: inner-lip gap /
# mouth width.
FIGURES = {
    "opening_corr": "mouth opening correlation, driver vs output (r)",
    "target_opening_corr": "the same for the untouched target (no-reenactment floor)",
    "range_ratio": "opening range, output / driver (5-95%; a frozen mouth: 0)",
    "sharpness_ratio": "mouth sharpness, output / the target's own (median; 1: as sharp)",
    "identity_shift_iod": "landmark shift away from the mouth (inter-ocular distances)",
    "identity_shift_iod_p95": "the same, 95th percentile",
    "outside_max_diff": "largest pixel change outside the mouth region (0: untouched)",
    "driver_opening_p5_p95": "driver's opening, 5th - 95th percentile",
    "output_opening_p5_p95": "output's opening, 5th - 95th percentile",
    "driver_opening_range": "driver's opening range",
    "output_opening_range": "output's opening range",
    "psnr_outside_mouth": "PSNR outside the mouth vs target (dB)",
    "frames": "frames",
    "reenacted": "frames reenacted",
    "driver_no_face": "driver frames without a face (passed through)",
    "target_no_face": "target frames without a face (passed through)",
    "output_face_found": "output frames with a face found",
    "grid_ratio": "realism: squeeze-grid energy, output / the target's own mouth (1: as real)",
    "lip_area_ratio": "realism: lip area, output / the target's own at the same opening",
    "lips_kept": "realism: open frames whose lips keep >= 0.7 of the target's",
    "lip_contrast_ratio": "realism: lip-skin contrast, output / the target's own",
    "temporal_ratio": "realism: mouth change on the driver's quiet frames, output / driver",
    "identity_distance": "realism: face-embedding distance to the target (< 0.6 same person)",
}
# Figures kept in RunResult.metrics but not shown in the page.
DETAILS = frozenset(
    {
        "target_range_ratio",
        "sharpness_ratio_p10",
        "target_opening_p5_p95",
        "motion_scale",
        "grid_ratio_p95",
        "grid_energy",
        "real_energy",
        "open_frames",
        "moving_ratio",
        "output_change",
        "driver_change",
        "identity_distance_max",
        "same_person",
        "sampled",
        "realism_notes",
    }
)


def figures_markdown(result: RunResult) -> str:
    """The lip-sync and realism figures as a two-column Markdown table, then the notes of the
    judges that did not run."""
    m = result.metrics
    rows = [f"| {label} | {_fmt(m[k])} |" for k, label in FIGURES.items() if k in m]
    rows += [f"| {k} | {_fmt(v)} |" for k, v in m.items() if k not in FIGURES and k not in DETAILS]
    head = f"**{result.frames} frames at {result.fps:.3g} fps in {result.seconds:.1f} s**\n\n"
    notes = "".join(f"\n{note}\n" for note in m.get("realism_notes", []))
    return head + "| figure | value |\n|---|---|\n" + "\n".join(rows) + "\n" + notes


def _fmt(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " - ".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.3f}"
    return str(value)
