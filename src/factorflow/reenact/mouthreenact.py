"""Real-video reenactment with the mouth flow, streamed: driver clip + target still/video -> video.

Pass 1 reads the driver (and a target video) once for landmarks only, keeping a few kB per frame:
the driver's neutral mouth needs the whole clip. Pass 2 reads the target frames again, renders
each (`mouthrender`: native-resolution landmark warp + the flow's mouth interior) and encodes it
at once. Memory does not grow with the clip's length (landmarks aside).

The stages overlap in threads (the codecs and MediaPipe release the GIL): in pass 1 the driver's
and the target's landmark passes run side by side, each fed by its own decoding thread; in pass 2
one thread decodes the target, the caller's renders, and one encodes. Each hand-over holds a few
frames at most (`AHEAD`), so memory stays flat at any resolution.

A driver frame without a face, or a target frame without one, is written untouched and counted.
Several faces: the `face`-th largest (0: the largest).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factorflow.face.landmarks import FaceTracker, found, inner_lip_opening, track_landmarks
from factorflow.face.motion import Geometry, driver_motion
from factorflow.face.render import MouthRenderer, Painter
from factorflow.reenact import streaming
from factorflow.reenact.judges import RealismRecorder

__all__ = [
    "SHIPPED",
    "Summary",
    "adapted_painter",
    "count_faces",
    "load_mouth_model",
    "no_face",
    "reenact_mouth",
]

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "mouthflow"
AHEAD = 8  # frames a decoding thread may read ahead, and an encoding thread lag behind


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


def load_mouth_model(checkpoint: Path | None = None, overrides: list[str] | None = None):
    """A mouth-paste model (the shipped mouth flow by default) and its config, on one torch
    thread: the flow runs on small batches of small crops, where one thread is as fast and
    leaves the other core to MediaPipe and the video codecs."""
    import torch

    from factorflow.models import load
    from factorflow.registry import spec

    torch.set_num_threads(1)
    model, config = load(checkpoint or SHIPPED, overrides)
    if spec(config.model).pipeline != "mouth-paste":
        raise ValueError(
            f"{checkpoint}: a {config.model} model reenacts model-sized crops, not the mouth paste"
        )
    return model, config


def adapted_painter(
    model,
    target: Path,
    steps: int,
    face: int = 0,
    max_frames: int = 150,
    seed: int = 0,
) -> tuple[Painter, dict]:
    """`model` fine-tuned in place for `steps` on pairs of the target video's own frames (its
    first `max_frames`), as a painter; and what was done (frames, pairs, seconds, losses)."""
    from factorflow.data.pairs import PairDataset
    from factorflow.reenact.adapt import adapt

    target = Path(target)
    streaming.check_input(target, "target")
    if streaming.is_still(target):
        raise ValueError(
            f"target {target}: --adapt-steps needs a video target (a still shows one mouth shape)"
        )
    clock = time.perf_counter()
    frames = list(streaming.frames(target, max_frames))
    landmarks, _ = track_landmarks(frames, face=face)
    pairs = PairDataset.of_arrays(frames, landmarks, model.crop_size, model.settings.partners)
    history = adapt(model, pairs, steps, seed=seed)
    info = {
        "frames": len(frames),
        "pairs": len(pairs),
        "steps": steps,
        "seconds": round(time.perf_counter() - clock, 1),
        "first": history[0],
        "last": history[-1],
    }
    log.info("adapted on %d pairs of %s in %.0f s", info["pairs"], target.name, info["seconds"])
    return model.painter(), info


def reenact_mouth(
    driver: Path,
    target: Path,
    out: Path,
    painter: Painter | None,
    crop_size: int = 64,
    face: int = 0,
    driver_face: int = 0,
    side_by_side: bool = False,
    measure: bool = False,
    sheet_frames: int = 0,
    max_frames: int | None = None,
    fps: float | None = None,
    length: str = "loop",
    progress: Callable[[Iterable, int], Iterable] | None = None,
    chunk: int = 8,
    replace: bool = False,
    interior: str = "flow",
) -> Summary:
    """Write `out` (`streaming.open_sink`: .mp4 with the driver's audio, .gif, one .png, or a
    folder of frames). `face` / `driver_face` pick the face in each input (0: the largest).
    `measure` adds the lip-sync figures (MediaPipe on every output frame) and the realism judges
    that one pair allows (`reenact.judges`: grid, lips, temporal, identity); `sheet_frames` keeps
    that many (driver, target, output) frames at the driver's most open moments for a contact
    sheet. `interior`: "flow" (the flow paints the mouth interior) or "driver" (the driver
    frame's own interior, warped into the new inner lips and colour-matched, over the flow's;
    `MouthRenderer`): the driver is then decoded once more, a frame at a time."""
    from factorflow.metrics.lipsync import LipSyncMeter

    driver, target, out = Path(driver), Path(target), Path(out)
    streaming.check_input(driver, "driver")
    streaming.check_input(target, "target")
    if streaming.is_still(driver):
        raise ValueError(f"driver {driver}: expected a video (a still cannot drive a mouth)")
    summary = Summary()
    busy = _Clock()
    d_lms, t_lms, still = _landmarks(driver, target, max_frames, face, driver_face, busy, summary)
    n = len(d_lms)
    schedule = streaming.target_schedule(n, len(t_lms), length)
    n = len(schedule)
    d_geo, t_geo = Geometry.of(d_lms), Geometry.of(t_lms)
    motion = driver_motion(d_geo, t_geo)
    renderer = MouthRenderer(t_geo.neutral, painter, crop_size, interior)
    t_found = found(t_lms)
    opening = inner_lip_opening(d_lms)
    keep = _most_open(opening, sheet_frames)
    meter = LipSyncMeter() if measure else None
    judges = RealismRecorder(n, crop_size) if measure else None
    checker = FaceTracker(static=still) if measure else None
    need_driver = side_by_side or keep or measure
    # Without a use for the target's own frames after rendering, they are rendered in place
    # (no whole-frame copy); a frame the reader hands out more than once (a still, a bounced
    # video) is then copied as it is read, in the reading thread.
    inplace = not need_driver
    read_driver = need_driver or interior == "driver"
    fresh = not still and bool(np.all((np.diff(schedule) == 1) | (schedule[1:] == 0)))
    timings = {"render": 0.0, "measure": 0.0}
    chunks: Iterable = range(0, n, chunk)
    if progress is not None:
        chunks = progress(chunks, (n + chunk - 1) // chunk)
    t_source = streaming.scheduled(target, schedule)
    if inplace and not fresh:
        t_source = map(np.copy, t_source)
    t_iter = _Ahead(t_source, busy, "decode")
    d_frames = _Ahead(streaming.frames(driver, max_frames), busy, "decode") if read_driver else None
    sink = _Behind(streaming.open_sink(out, fps or streaming.fps_of(driver), driver, replace), busy)
    try:
        for start in chunks:
            ts = list(range(start, min(start + chunk, n)))
            frames = [next(t_iter) for _ in ts]
            d_frames_now = [next(d_frames) if d_frames is not None else None for _ in ts]
            clock = time.perf_counter()
            js = [int(schedule[t]) for t in ts]
            live = [
                k
                for k, (t, j) in enumerate(zip(ts, js, strict=True))
                if motion.driver_found[t] and t_found[j]
            ]
            rendered = renderer.render_many(
                [
                    (frames[k], t_lms[js[k]], t_geo.to_canonical[js[k]], motion.delta[ts[k]])
                    for k in live
                ],
                inplace=inplace,
                drivers=[(d_frames_now[k], d_lms[ts[k]]) for k in live]
                if interior == "driver"
                else None,
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
                    d_marks = d_lms[t] if motion.driver_found[t] else None
                    t_marks = t_lms[j] if t_found[j] else None
                    o_marks = checker(result)
                    meter.add(d_marks, frame, t_marks, result, o_marks, pasted[k])
                    judges.add(result, o_marks, d_frame, d_marks, frame, t_marks, j)
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
                if side_by_side:
                    result = _side_by_side(d_frame, frame, result)
                sink.write(result)
                summary.frames += 1
        sink.close()
    except BaseException:
        sink.abort()
        raise
    finally:
        t_iter.close()
        if d_frames is not None:
            d_frames.close()
        if checker is not None:
            checker.close()
    if meter is not None:
        clock = time.perf_counter()
        summary.metrics = {**meter.summary(), **judges.figures()}
        timings["measure"] += time.perf_counter() - clock
        summary.rows = meter.rows
        summary.metrics.update(
            reenacted=summary.reenacted,
            driver_no_face=summary.driver_no_face,
            target_no_face=summary.target_no_face,
            motion_scale=motion.scale,
        )
    summary.seconds.update(timings, **busy.seconds)
    return summary


def _landmarks(
    driver: Path,
    target: Path,
    max_frames: int | None,
    face: int,
    driver_face: int,
    busy: _Clock,
    summary: Summary,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Pass 1: (driver landmarks, target landmarks, whether the target is a still). The two
    passes run side by side; a target video is read for as many frames as the driver has (the
    driver's count is known only at its end, so the target may run a few frames beyond it:
    those are dropped, and frame-to-frame tracking makes the kept ones the same)."""
    still = streaming.is_still(target)
    limit = [max_frames]  # the target frames wanted: the driver's count once it is known
    results: dict[str, tuple] = {}

    def target_frames() -> Iterator[np.ndarray]:
        frames = _Ahead(streaming.frames(target, 1 if still else None), busy)
        try:
            for i, frame in enumerate(frames):
                if limit[0] is not None and i >= limit[0]:
                    return
                yield frame
        finally:
            frames.close()

    def run(name: str, frames: Iterable[np.ndarray], static: bool, index: int) -> None:
        clock = time.perf_counter()
        try:
            results[name] = (track_landmarks(frames, static, index)[0], None)
        except BaseException as exc:  # raised by the caller, the driver's first
            results[name] = (None, exc)
        busy.add(f"{name}_landmarks", time.perf_counter() - clock)

    worker = threading.Thread(
        target=run, args=("target", target_frames(), still, face), daemon=True
    )
    worker.start()
    d_frames = _Ahead(streaming.frames(driver, max_frames), busy)
    try:
        run("driver", d_frames, False, driver_face)
    finally:
        d_frames.close()
        d_lms, error = results.get("driver", (None, None))
        # A driver without a face (or an error) stops the target's pass at once.
        limit[0] = len(d_lms) if d_lms is not None and found(d_lms).any() else 0
        worker.join()
    if error is not None:
        raise error
    n = len(d_lms)
    if not found(d_lms).any():
        raise ValueError(no_face(driver, "driver", n, driver_face, "--driver-face"))
    t_lms, error = results["target"]
    if error is not None:
        raise error
    t_lms = t_lms if still else t_lms[:n]
    if not found(t_lms).any():
        raise ValueError(no_face(target, "target", len(t_lms), face, "--face"))
    seconds = busy.seconds
    # MediaPipe's own time: each pass's time less what it waited for its frames.
    summary.seconds["landmarks"] = (
        seconds["driver_landmarks"] + seconds["target_landmarks"] - seconds.get("waited", 0.0)
    )
    busy.seconds["waited"] = 0.0
    return d_lms, t_lms, still


class _Clock:
    """Seconds per stage, added to from several threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"decode": 0.0, "encode": 0.0}
        self._lock = threading.Lock()

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds


_END = object()


class _Ahead:
    """The items of `source`, read by a thread of their own at most `AHEAD` items ahead of
    their use (its seconds counted as `key` in `clock`; what the user waits for them as
    "waited"). An error in the reading is raised where the item would have been. `close` stops
    the thread and closes `source` (its file)."""

    def __init__(self, source: Iterable, clock: _Clock, key: str = "decode") -> None:
        self._queue: queue.Queue = queue.Queue(AHEAD)
        self._stop = threading.Event()
        self._clock, self._key = clock, key
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(source,), daemon=True)
        self._thread.start()

    def _read(self, source: Iterable) -> None:
        items = iter(source)
        try:
            while not self._stop.is_set():
                clock = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    item = _END
                self._clock.add(self._key, time.perf_counter() - clock)
                self._put(item)
                if item is _END:
                    return
        except BaseException as exc:
            self._put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> _Ahead:
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        clock = time.perf_counter()
        item = self._queue.get()
        self._clock.add("waited", time.perf_counter() - clock)
        if item is _END or isinstance(item, _Failed):
            self._done = True
            self.close()
            if item is _END:
                raise StopIteration
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
        with _suppress_empty():
            while True:
                self._queue.get_nowait()
        self._thread.join()


class _Behind:
    """`sink` written by a thread of its own, at most `AHEAD` frames behind the caller (its
    seconds counted as "encode"). An error in the writing is raised by the next `write` or by
    `close`; `abort` drops everything, as the sink's own does."""

    def __init__(self, sink, clock: _Clock) -> None:
        self.sink, self._clock = sink, clock
        self._queue: queue.Queue = queue.Queue(AHEAD)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is _END:
                return
            if self._error is not None or self._stop.is_set():
                continue
            clock = time.perf_counter()
            try:
                self.sink.write(frame)
            except BaseException as exc:
                self._error = exc
            self._clock.add("encode", time.perf_counter() - clock)

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, frame: np.ndarray) -> None:
        self._raise()
        self._queue.put(frame)

    def close(self):
        self._queue.put(_END)
        self._thread.join()
        self._raise()
        clock = time.perf_counter()
        path = self.sink.close()
        self._clock.add("encode", time.perf_counter() - clock)
        return path

    def abort(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        self.sink.abort()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _suppress_empty:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, *_) -> bool:
        return kind is queue.Empty


def no_face(path: Path, what: str, checked: int, face: int, option: str) -> str:
    """The one-line refusal when `path` shows no face `face` (0: the largest) in any frame."""
    if face == 0:
        return f"no face found in {what} {path} (checked {checked} frames)"
    most = count_faces(path)
    shows = f"{most} face{'s' if most != 1 else ''}"
    return (
        f"{what} {path} shows {shows}, so it has no face {option} {face} (0 is the largest): "
        f"choose {option} 0 to {max(most - 1, 0)}"
        if most
        else f"no face found in {what} {path} (checked {checked} frames)"
    )


def count_faces(path: Path, frames: int = 10) -> int:
    """The most faces found in one of the first `frames` frames of `path`."""
    from factorflow.face.landmarks import most_faces

    return most_faces(streaming.frames(path, frames))


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
