"""The mouth flow through the engine, as a user runs it: `synth --landmarks`, `train --model
mouthflow` (killed with -9, resumed bit-exactly), then `reenact` and the app's run function on
the trained run folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_testutils import cli, env, train_then_kill
from safetensors.torch import load_file

from factorflow import checkpoint as ckpt

pytest.importorskip("mediapipe")
pytest.importorskip("av")

STEPS = 8
TRAIN = [
    "train",
    "--model",
    "mouthflow",
    "--config",
    "tiny",
    "--max-steps",
    str(STEPS),
    "--no-progress",
    "train.ckpt_every=2",
    "train.val_every=100",
    "train.sample_every=4",
    "train.keep_last=50",
    "data.batch_size=4",
    "data.init_batch=8",
    "mouthflow.cond_channels=4",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from factorflow.data.synth import generate

    out = tmp_path_factory.mktemp("mf") / "synth"
    summary = generate(out, size=64, frames=8, speakers=4, words=2, landmarks=True)
    assert summary["landmarks"]["faces"] == summary["frames"]  # MediaPipe finds every face
    return out


@pytest.fixture(scope="module")
def run(corpus: Path, tmp_path_factory) -> Path:
    base = [*TRAIN, "--data", str(corpus)]
    root = tmp_path_factory.mktemp("runs")
    ref, killed = root / "ref", root / "killed"
    subprocess.run(cli(*base, "--out", str(ref)), check=True, env=env(), capture_output=True)
    assert train_then_kill([*base, "--out", str(killed)], killed) is not None
    done = subprocess.run(
        cli(*base, "--out", str(killed), "--resume"), env=env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained mouthflow to step 8" in done.stdout
    name = f"step_{STEPS:08d}/model.safetensors"
    a, b = load_file(str(ref / "checkpoints" / name)), load_file(str(killed / "checkpoints" / name))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # exact resume
    return killed


def test_the_run_holds_one_checkpoint_format_previews_and_a_validation(run: Path) -> None:
    from factorflow.models import load

    model, config = load(run)
    assert config.model == "mouthflow" and model.crop_size == 16
    state = ckpt.load(run)
    assert set(state.state["files"]) >= {"model.safetensors"}  # SHA-256 recorded
    assert list((run / "samples").glob("*pairs*.png"))
    assert "val_rec" in state.state["metrics"]


def test_reenact_and_the_app_run_the_trained_mouth_flow(run: Path, corpus: Path, tmp_path) -> None:
    from factorflow.app.run import RunRequest, run_reenactment
    from factorflow.app.settings import AppSettings
    from factorflow.app.sources import ModelCache
    from factorflow.cli.main import main
    from factorflow.reenact import streaming

    driver = corpus / "test" / sorted(p.name for p in (corpus / "test").iterdir())[0]
    clips = sorted(driver.glob("*_00.png"))
    driver_clip = clips[0].parent / clips[0].name[: -len("_00.png")]
    target_still = clips[-1]
    out = tmp_path / "frames"
    args = ["reenact", "--checkpoint", str(run), "--driver", str(driver_clip)]
    assert main([*args, "--target", str(target_still), "--out", str(out), "--no-align"]) == 0
    assert len(streaming.frame_files(out)) == 8
    big = tmp_path / "big.png"
    from PIL import Image

    Image.open(target_still).resize((256, 256)).save(big)
    assert main([*args, "--target", str(big), "--out", str(tmp_path / "o.mp4"), "--report"]) == 0
    assert (tmp_path / "o.json").is_file()
    result = run_reenactment(
        RunRequest(big, tmp_path / "o.mp4", run),
        AppSettings(workdir=tmp_path / "app"),
        ModelCache(),
    )
    assert result.frames == 8 and np.isfinite(result.metrics["opening_corr"])
