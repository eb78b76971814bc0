"""Training survives anything: kill -9 then --resume, DDP equivalence, non-finite steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_testutils import cli, env, train_then_kill
from safetensors.torch import load_file

from factorflow import checkpoint as ckpt
from factorflow.config import load_config
from factorflow.engine.trainer import Trainer, train

OVERRIDES = [
    "train.ckpt_every=4",
    "train.val_every=100",
    "train.sample_every=100",
    "train.log_every=2",
    "train.keep_last=50",
]


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"step_{step:08d}" / "model.safetensors"))


def _assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0), k


def test_kill_9_then_resume_matches_uninterrupted(tiny_lrw: Path, tmp_path: Path) -> None:
    steps = "24"
    base = [
        "train",
        "--data",
        str(tiny_lrw),
        "--config",
        "tiny",
        "--max-steps",
        steps,
        "--no-progress",
        *OVERRIDES,
    ]
    ref = tmp_path / "ref"
    subprocess.run(cli(*base, "--out", str(ref)), check=True, env=env(), capture_output=True)

    run = tmp_path / "killed"
    killed_at = train_then_kill([*base, "--out", str(run)], run, settle=0.05)
    assert killed_at is not None and ckpt.load(killed_at).step < int(steps)

    subprocess.run(
        cli(*base, "--out", str(run), "--resume"), check=True, env=env(), capture_output=True
    )
    _assert_same(_weights(ref, int(steps)), _weights(run, int(steps)))


def test_existing_run_without_resume_is_refused(tiny_lrw: Path, tmp_path: Path) -> None:
    cfg = load_config("tiny", [*OVERRIDES, "train.max_steps=4"])
    train(cfg, tiny_lrw, tmp_path, progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train(cfg, tiny_lrw, tmp_path, progress=False)
    other = load_config("tiny", [*OVERRIDES, "train.max_steps=8", "flow.hidden=8"])
    with pytest.raises(ValueError, match="flow.hidden"):
        train(other, tiny_lrw, tmp_path, resume=True, progress=False)


def test_two_gloo_processes_equal_one_process(tiny_lrw: Path, tmp_path: Path) -> None:
    common = [
        "train",
        "--data",
        str(tiny_lrw),
        "--config",
        "tiny",
        "--max-steps",
        "6",
        "--no-progress",
    ]
    one = tmp_path / "one"
    subprocess.run(
        cli(*common, "--out", str(one), *OVERRIDES, "data.batch_size=8"),
        check=True,
        env=env(),
        capture_output=True,
    )
    two = tmp_path / "two"
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "factorflow.cli.main",
    ]
    out = subprocess.run(
        [*launcher, *common, "--out", str(two), *OVERRIDES, "data.batch_size=4"],
        env=env(),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    _assert_same(_weights(one, 6), _weights(two, 6), atol=1e-5)


def test_non_finite_steps_are_skipped_then_rolled_back(
    tiny_lrw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config("tiny", [*OVERRIDES, "train.max_steps=12", "train.nan_patience=3"])
    trainer = Trainer(cfg, tiny_lrw, tmp_path, progress=False)
    real = type(trainer.model).losses
    calls = {"n": 0}

    def flaky(self, batch, rand):
        terms = real(self, batch, rand)
        calls["n"] += 1
        if 7 <= calls["n"] <= 9:  # three bad steps in a row after the step-4 checkpoint
            terms["bpd"] = terms["bpd"] * float("nan")
        return terms

    monkeypatch.setattr(type(trainer.model), "losses", flaky)
    result = trainer.fit()
    assert result.step == 12
    assert trainer.lr_scale == pytest.approx(cfg.train.nan_lr_factor)
    for v in trainer.model.state_dict().values():
        assert torch.isfinite(v.float()).all()
