"""Real-video reenactment with the mouth flow, streamed: driver clip + target still/video -> video.

Pass 1 reads the driver (and a target video) once for landmarks only, keeping a few kB per frame:
the driver's neutral mouth needs the whole clip. Pass 2 reads the target frames again, renders
each (`mouthrender`: native-resolution landmark warp + the flow's mouth interior) and encodes it
at once. Memory does not grow with the clip's length (landmarks aside).

A driver frame without a face, or a target frame without one, is written untouched and counted.
Several faces: the `face`-th largest (0: the largest).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factorflow.face.landmarks import FaceTracker, found, inner_lip_opening, track_landmarks
from factorflow.face.motion import Geometry, driver_motion
from factorflow.face.render import MouthRenderer, Painter
from factorflow.reenact import streaming

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "mouthflow"


@dataclass
class Summary:
    frames: int = 0
    reenacted: int = 0
    driver_no_face: int = 0
    target_no_face: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict | None = None
    sheet: list[dict] = field(default_factory=list)  # crops at the driver's most open frames
    rows: list[dict] = field(default_factory=list)  # the lip-sync meter's per-frame figures

    def line(self) -> str:
        skipped = self.frames - self.reenacted
        text = f"{self.reenacted}/{self.frames} frames reenacted"
        if skipped:
            text += (
                f" ({skipped} passed through untouched: no face in {self.driver_no_face} driver "
                f"and {self.target_no_face} target frames)"
            )
        return text


def load_painter(
    checkpoint: Path | None = None, temperature: float | None = None
) -> tuple[Painter, int]:
    """The mouth flow (the shipped one by default) as a painter, and its crop size.
    `temperature`: how much of the target's own latent deviation a decode keeps (default: the
    checkpoint's)."""
    model = _load_flow(checkpoint, temperature)
    return model.painter(), model.config.size


def _load_flow(checkpoint: Path | None, temperature: float | None):
    """The mouth flow (the shipped one by default), on one torch thread."""
    import torch

    from factorflow.models.mouthflow import MouthFlow

    # The flow runs on small batches of small crops: one thread is as fast, and leaves the
    # other core to MediaPipe and the video codecs.
    torch.set_num_threads(1)
    return MouthFlow.load(checkpoint or SHIPPED, temperature)


def adapted_painter(
    checkpoint: Path | None,
    target: Path,
    steps: int,
    face: int = 0,
    max_frames: int = 150,
    seed: int = 0,
    temperature: float | None = None,
) -> tuple[Painter, int, dict]:
    """The mouth flow fine-tuned for `steps` on pairs of the target video's own frames (its first
    `max_frames`), as a painter; its crop size; what was done (frames, pairs, seconds, losses)."""
    from factorflow.models.mouthflow import adapt
    from factorflow.reenact.mouthdata import frame_pairs

    target = Path(target)
    streaming.check_input(target, "target")
    if streaming.is_still(target):
        raise ValueError(
            f"target {target}: --adapt-steps needs a video target (a still shows one mouth shape)"
        )
    clock = time.perf_counter()
    model = _load_flow(checkpoint, temperature)
    size = model.config.size
    frames = list(streaming.frames(target, max_frames))
    landmarks, _ = track_landmarks(frames, face=face)
    pairs = frame_pairs(frames, landmarks, size, 4, np.random.default_rng(seed))
    if not pairs:
        raise ValueError(
            f"target {target}: no two frames of one head pose with a face to adapt on "
            f"(checked {len(frames)} frames)"
        )
    history = adapt(model, pairs, steps, seed=seed)
    info = {
        "frames": len(frames),
        "pairs": len(pairs["own"]),
        "steps": steps,
        "seconds": round(time.perf_counter() - clock, 1),
        "first": history[0],
        "last": history[-1],
    }
    log.info("adapted on %d pairs of %s in %.0f s", info["pairs"], target.name, info["seconds"])
    return model.painter(), size, info


def reenact_mouth(
    driver: Path,
    target: Path,
    out: Path,
    painter: Painter | None,
    crop_size: int = 64,
    face: int = 0,
    side_by_side: bool = False,
    measure: bool = False,
    sheet_frames: int = 0,
    max_frames: int | None = None,
    fps: float | None = None,
    progress: Callable[[Iterable, int], Iterable] | None = None,
    chunk: int = 8,
) -> Summary:
    """Write `out` (.mp4 with the driver's audio, or .gif). `measure` adds the lip-sync figures
    (MediaPipe on every output frame); `sheet_frames` keeps that many (driver, target, output)
    frames at the driver's most open moments for a contact sheet."""
    from factorflow.metrics.lipsync import LipSyncMeter

    driver, target, out = Path(driver), Path(target), Path(out)
    streaming.check_input(driver, "driver")
    streaming.check_input(target, "target")
    if streaming.is_still(driver):
        raise ValueError(f"driver {driver}: expected a video (a still cannot drive a mouth)")
    summary = Summary()
    clock = time.perf_counter()
    d_lms, _ = track_landmarks(streaming.frames(driver, max_frames), face=face)
    summary.seconds["driver_landmarks"] = time.perf_counter() - clock
    n = len(d_lms)
    if not found(d_lms).any():
        raise ValueError(f"no face found in driver {driver} (checked {n} frames)")
    clock = time.perf_counter()
    still = streaming.is_still(target)
    t_lms, _ = track_landmarks(streaming.frames(target, None if still else n), still, face)
    summary.seconds["target_landmarks"] = time.perf_counter() - clock
    if not found(t_lms).any():
        raise ValueError(f"no face found in target {target} (checked {len(t_lms)} frames)")
    d_geo, t_geo = Geometry.of(d_lms), Geometry.of(t_lms)
    motion = driver_motion(d_geo, t_geo)
    renderer = MouthRenderer(t_geo.neutral, painter, crop_size)
    t_found = found(t_lms)
    opening = inner_lip_opening(d_lms)
    keep = _most_open(opening, sheet_frames)
    meter = LipSyncMeter() if measure else None
    checker = FaceTracker(static=still) if measure else None
    sink = streaming.VideoSink(out, fps or streaming.fps_of(driver), audio_from=driver)
    d_frames = streaming.frames(driver, max_frames) if side_by_side or keep else None
    timings = {"render": 0.0, "decode": 0.0, "encode": 0.0, "measure": 0.0}
    chunks: Iterable = range(0, n, chunk)
    if progress is not None:
        chunks = progress(chunks, (n + chunk - 1) // chunk)
    t_iter = streaming.looped(target, n)
    try:
        for start in chunks:
            clock = time.perf_counter()
            ts = list(range(start, min(start + chunk, n)))
            frames = [next(t_iter) for _ in ts]
            d_frames_now = [next(d_frames) if d_frames is not None else None for _ in ts]
            timings["decode"] += time.perf_counter() - clock
            clock = time.perf_counter()
            js = [t % len(t_lms) for t in ts]
            live = [
                k
                for k, (t, j) in enumerate(zip(ts, js, strict=True))
                if motion.driver_found[t] and t_found[j]
            ]
            rendered = renderer.render_many(
                [
                    (frames[k], t_lms[js[k]], t_geo.to_canonical[js[k]], motion.delta[ts[k]])
                    for k in live
                ]
            )
            results = list(frames)
            pasted: list = [None] * len(ts)
            for k, r in zip(live, rendered, strict=True):
                results[k], pasted[k] = r.frame, (r.box, r.mask)
            summary.reenacted += len(live)
            for t, j in zip(ts, js, strict=True):
                if not (motion.driver_found[t] and t_found[j]):
                    summary.driver_no_face += int(not motion.driver_found[t])
                    summary.target_no_face += int(not t_found[j])
            timings["render"] += time.perf_counter() - clock
            for k, t in enumerate(ts):
                j, frame, result, d_frame = js[k], frames[k], results[k], d_frames_now[k]
                if meter is not None:
                    clock = time.perf_counter()
                    meter.add(
                        d_lms[t] if motion.driver_found[t] else None,
                        frame,
                        t_lms[j] if t_found[j] else None,
                        result,
                        checker(result),
                        pasted[k],
                    )
                    timings["measure"] += time.perf_counter() - clock
                if t in keep:
                    summary.sheet.append(
                        {
                            "t": t,
                            "driver": d_frame,
                            "driver_landmarks": d_lms[t],
                            "target": frame,
                            "target_landmarks": t_lms[j],
                            "output": result,
                        }
                    )
                clock = time.perf_counter()
                if side_by_side:
                    result = _side_by_side(d_frame, frame, result)
                sink.write(result)
                timings["encode"] += time.perf_counter() - clock
                summary.frames += 1
        clock = time.perf_counter()
        sink.close()
        timings["encode"] += time.perf_counter() - clock
    except BaseException:
        sink.abort()
        raise
    finally:
        if checker is not None:
            checker.close()
    summary.seconds.update(timings)
    if meter is not None:
        summary.metrics = meter.summary()
        summary.rows = meter.rows
        summary.metrics.update(
            reenacted=summary.reenacted,
            driver_no_face=summary.driver_no_face,
            target_no_face=summary.target_no_face,
            motion_scale=motion.scale,
        )
    return summary


def _most_open(opening: np.ndarray, count: int, spacing: int = 5) -> set[int]:
    chosen: list[int] = []
    for t in np.argsort(np.nan_to_num(opening, nan=-1.0))[::-1]:
        if len(chosen) >= count:
            break
        if all(abs(int(t) - c) >= spacing for c in chosen):
            chosen.append(int(t))
    return set(chosen)


def _side_by_side(driver: np.ndarray, target: np.ndarray, result: np.ndarray) -> np.ndarray:
    from PIL import Image

    height = result.shape[0]

    def fit(image: np.ndarray) -> np.ndarray:
        if image.shape[0] == height:
            return image
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))

    return np.concatenate([fit(driver), fit(target), result], axis=1)
