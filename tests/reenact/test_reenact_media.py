"""Clips in: images, folders, LRW clip prefixes; clips out: PNG folders written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factorflow.reenact.media import load_clip, side_by_side, to_model_frames, write_clip


def _frames(n: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


def test_lrw_prefix_folder_and_image_inputs(tmp_path: Path) -> None:
    frames = _frames(3)
    word = tmp_path / "ABOUT"
    word.mkdir()
    for t, f in enumerate(frames):
        Image.fromarray(f).save(word / f"ABOUT_00003_{t:02d}.png")
    Image.fromarray(frames[0]).save(word / "ABOUT_00004_00.png")
    clip, fps = load_clip(word / "ABOUT_00003")
    assert np.array_equal(clip, frames) and fps == 25.0
    assert len(load_clip(word)[0]) == 4  # a folder: every image in it
    assert np.array_equal(load_clip(word / "ABOUT_00004_00.png")[0], frames[:1])
    with pytest.raises(FileNotFoundError, match="ABOUT_00009"):
        load_clip(word / "ABOUT_00009")


def test_model_size_is_checked_and_outputs_are_whole(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="drop --no-align"):
        to_model_frames(_frames(2, 8), 16, "driver")
    assert to_model_frames(_frames(2, 8), 8, "driver").shape == (2, 3, 8, 8)
    out = write_clip(tmp_path / "out", side_by_side(_frames(2), _frames(1)))
    assert sorted(p.name for p in out.iterdir()) == ["frame_0000.png", "frame_0001.png"]
    assert np.asarray(Image.open(out / "frame_0000.png")).shape == (8, 16, 3)
    assert not list(tmp_path.glob(".*"))
