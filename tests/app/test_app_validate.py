"""Uploads are checked before any model runs; each problem is one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factorflow.app import validate
from factorflow.app.settings import AppSettings
from factorflow.app.validate import InputError

pytest.importorskip("av")


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    return AppSettings(workdir=tmp_path, max_upload_mb=1, max_seconds=2, min_side=64)


def _video(path: Path, frames: int, size: int = 96, fps: float = 25.0) -> Path:
    from factorflow.data.video_io import write_video

    rng = np.random.default_rng(0)
    write_video(path, rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8), fps)
    return path


def test_a_good_driver_and_targets_are_read(tmp_path: Path, settings: AppSettings) -> None:
    frames, fps, path = validate.driver_clip(_video(tmp_path / "d.mp4", 10), settings)
    assert frames.shape == (10, 96, 96, 3) and fps == pytest.approx(25.0) and path.name == "d.mp4"
    Image.new("RGB", (80, 100), (200, 150, 120)).save(tmp_path / "face.jpg")
    assert validate.target_face(tmp_path / "face.jpg", settings).shape == (1, 100, 80, 3)
    assert validate.target_face(tmp_path / "d.mp4", settings).shape == (10, 96, 96, 3)


def test_nothing_given(settings: AppSettings) -> None:
    with pytest.raises(InputError, match="no driving clip given"):
        validate.driver_clip(None, settings)
    with pytest.raises(InputError, match="no target face given"):
        validate.target_face("", settings)


def test_a_text_file_named_mp4_is_not_a_video(tmp_path: Path, settings: AppSettings) -> None:
    (tmp_path / "notes.mp4").write_text("hello\n")
    with pytest.raises(InputError, match=r"driving clip notes\.mp4 is not a video") as err:
        validate.driver_clip(tmp_path / "notes.mp4", settings)
    assert "\n" not in str(err.value)
    (tmp_path / "notes.png").write_text("hello\n")
    with pytest.raises(InputError, match=r"target face notes\.png is not an image"):
        validate.target_face(tmp_path / "notes.png", settings)


def test_an_image_is_no_driver(tmp_path: Path, settings: AppSettings) -> None:
    Image.new("RGB", (96, 96)).save(tmp_path / "still.png")
    with pytest.raises(InputError, match="is an image: the driver must be a video"):
        validate.driver_clip(tmp_path / "still.png", settings)


def test_too_small(tmp_path: Path, settings: AppSettings) -> None:
    Image.new("RGB", (120, 40)).save(tmp_path / "tiny.png")
    with pytest.raises(InputError, match=r"tiny\.png is 120x40 pixels: too small, at least 64"):
        validate.target_face(tmp_path / "tiny.png", settings)
    with pytest.raises(InputError, match="too small"):
        validate.driver_clip(_video(tmp_path / "small.mp4", 3, size=32), settings)


def test_over_the_upload_limit(tmp_path: Path, settings: AppSettings) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))
    with pytest.raises(InputError, match=r"big\.mp4: 1\.0 MB is over the upload limit of 1 MB"):
        validate.driver_clip(big, settings)


def test_longer_than_the_limit(tmp_path: Path, settings: AppSettings) -> None:
    with pytest.raises(InputError, match=r"long\.mp4 is .*3\.\d s long; the limit is 2 s"):
        validate.driver_clip(_video(tmp_path / "long.mp4", 80), settings)
    frames, _, _ = validate.driver_clip(_video(tmp_path / "ok.mp4", 50), settings)
    assert len(frames) == 50  # exactly at the limit is fine


def test_settings_refuse_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must all be positive"):
        AppSettings(workdir=tmp_path, max_upload_mb=0)


def test_checks_without_keeping_the_frames(tmp_path: Path, settings: AppSettings) -> None:
    """keep=False (the streamed mouth flow): every check as before, only the first frame kept."""
    frames, fps, _ = validate.driver_clip(_video(tmp_path / "ok.mp4", 50), settings, keep=False)
    assert frames.shape == (1, 96, 96, 3) and fps == pytest.approx(25.0)
    assert validate.target_face(tmp_path / "ok.mp4", settings, keep=False).shape == (1, 96, 96, 3)
    with pytest.raises(InputError, match=r"long\.mp4 is .*3\.\d s long; the limit is 2 s"):
        validate.driver_clip(_video(tmp_path / "long.mp4", 80), settings, keep=False)
    with pytest.raises(InputError, match="too small"):
        validate.target_face(_video(tmp_path / "small.mp4", 3, size=32), settings, keep=False)
    (tmp_path / "notes.mp4").write_text("hello\n")
    with pytest.raises(InputError, match=r"driving clip notes\.mp4 is not a video"):
        validate.driver_clip(tmp_path / "notes.mp4", settings, keep=False)
