"""Damaged checkpoints: resume takes the newest intact step and says which it skipped and why;
inference reads the model weights alone and names a broken file; a full disk, a kill -9 or an
undeletable old step never cost an earlier checkpoint."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from faults_testutils import RUN_OVERRIDES, cli, one_line_error, snapshot

from factorflow import checkpoint as ckpt


def _step(run: Path, n: int) -> Path:
    return run / "checkpoints" / f"step_{n:08d}"


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "model-zero-bytes": (lambda s: _truncate(s / "model.safetensors", 0), "truncated"),
    "model-truncated": (lambda s: _truncate(s / "model.safetensors", 0.5), "truncated"),
    "model-bit-flip": (lambda s: _flip(s / "model.safetensors"), "SHA-256"),
    "state-missing": (lambda s: (s / "state.json").unlink(), "state.json is missing"),
    "state-garbage": (lambda s: (s / "state.json").write_text("{not json"), "not valid JSON"),
    "optimizer-zero-bytes": (lambda s: _truncate(s / "optimizer.safetensors", 0), "truncated"),
    "optimizer-truncated": (lambda s: _truncate(s / "optimizer.safetensors", 0.7), "truncated"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_resume_skips_a_damaged_newest_step(kind: str, run_copy: Path, caplog) -> None:
    damage, reason = DAMAGE[kind]
    damage(_step(run_copy, 6))
    with caplog.at_level(logging.WARNING):
        assert ckpt.latest_intact(run_copy) == _step(run_copy, 4)
    assert "step_00000006" in caplog.text and reason in caplog.text


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_inference_names_the_damaged_file_or_uses_the_weights_alone(
    kind: str, run_copy: Path, tmp_path: Path, capsys, caplog
) -> None:
    damage, reason = DAMAGE[kind]
    step = _step(run_copy, 6)
    damage(step)
    before = snapshot(run_copy)
    out = tmp_path / "grid.png"
    code, err = cli(capsys, "sample", "--checkpoint", step, "--out", out, "--n", "4")
    if kind.startswith("optimizer"):
        assert code == 0 and out.is_file(), err  # inference never reads the optimizer file
    else:
        assert code == 2
        line = one_line_error(err)
        assert str(step) in line and reason in line
        assert not out.exists()
    # the run folder resolves to the newest intact step, saying what it skipped
    with caplog.at_level(logging.WARNING):
        chosen = ckpt.resolve(run_copy)
    assert chosen == (step if kind.startswith("optimizer") else _step(run_copy, 4))
    assert snapshot(run_copy) == before


def test_resume_after_damage_continues_from_the_intact_step(
    run_copy: Path, tiny_lrw: Path, capsys, caplog
) -> None:
    _truncate(_step(run_copy, 6) / "model.safetensors", 0.3)
    earlier = {n: snapshot(_step(run_copy, n)) for n in (2, 4)}
    code, err = cli(
        capsys, "train", "--data", tiny_lrw, "--out", run_copy, "--config", "tiny",
        "--max-steps", "8", "--resume", "--no-progress", *RUN_OVERRIDES[1:],
    )  # fmt: skip
    assert code == 0, err
    said = caplog.text  # the CLI's log lines (stderr outside pytest)
    assert "skipping checkpoint" in said and "step_00000006" in said and "truncated" in said
    assert all(snapshot(_step(run_copy, n)) == s for n, s in earlier.items())
    assert ckpt.problem(_step(run_copy, 6), optimizer=True) is None  # rewritten whole
    assert ckpt.problem(_step(run_copy, 8), optimizer=True) is None


def test_every_step_broken_is_one_clear_error(run_copy: Path, tiny_lrw: Path, capsys) -> None:
    for n in (2, 4, 6):
        _truncate(_step(run_copy, n) / "model.safetensors", 0.5)
    before = snapshot(run_copy)
    code, err = cli(
        capsys, "train", "--data", tiny_lrw, "--out", run_copy, "--config", "tiny",
        "--max-steps", "8", "--resume", "--no-progress",
    )  # fmt: skip
    assert code == 2 and "no intact checkpoint" in one_line_error(err)
    assert snapshot(run_copy) == before


def test_disk_full_during_a_checkpoint_keeps_every_earlier_one(
    run_copy: Path, tiny_lrw: Path, capsys, monkeypatch
) -> None:
    real = ckpt.save_file

    def full(tensors, filename, *args, **kwargs):
        real(tensors, filename, *args, **kwargs)
        _truncate(Path(filename), 0.5)  # what made it to disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(ckpt, "save_file", full)
    before = snapshot(run_copy / "checkpoints")
    args = ["train", "--data", tiny_lrw, "--out", run_copy, "--config", "tiny", "--max-steps",
            "8", "--resume", "--no-progress", *RUN_OVERRIDES[1:]]  # fmt: skip
    code, err = cli(capsys, *args)
    line = one_line_error(err)
    assert code == 1 and "No space left on device" in line
    assert str(_step(run_copy, 8)) in line and ".tmp" not in line
    assert snapshot(run_copy / "checkpoints") == before  # no partial step, no temporary left
    monkeypatch.setattr(ckpt, "save_file", real)
    code, err = cli(capsys, *args)  # space freed: resume goes on
    assert code == 0, err
    assert ckpt.problem(_step(run_copy, 8), optimizer=True) is None


def test_an_old_step_that_cannot_be_deleted_does_not_stop_training(
    run_copy: Path, monkeypatch, caplog
) -> None:
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(ckpt.shutil, "rmtree", refuse)
    state = ckpt.load(run_copy, optimizer=True)
    from factorflow.config import from_dict
    from factorflow.models import build_model

    model = build_model(from_dict(state.config))
    with caplog.at_level(logging.WARNING):
        ckpt.save(run_copy, 8, model, None, state.config, keep_last=1)
    assert "could not delete old checkpoint" in caplog.text
    assert ckpt.resolve(run_copy) == _step(run_copy, 8)
    # nothing half-deleted is left looking like a checkpoint
    assert all(ckpt.problem(s) is None for s in ckpt.step_dirs(run_copy / "checkpoints"))


WRITER = textwrap.dedent(
    """
    import sys, torch
    from factorflow import checkpoint as ckpt
    model = torch.nn.Linear(1500, 1500)  # 9 MB per checkpoint: a kill lands mid-write
    for step in range(1, 10_000):
        ckpt.save(sys.argv[1], step, model, None, {}, keep_last=3)
        print(step, flush=True)
    """
)


def test_kill_9_mid_write_leaves_only_whole_checkpoints(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for delay in (0.0, 0.05, 0.11):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env
        )
        for _ in range(3):
            proc.stdout.readline()  # some checkpoints are complete
        time.sleep(delay)
        proc.send_signal(signal.SIGSTOP)  # freeze it mid-write so the snapshot cannot race pruning
        before = {p.name: snapshot(p) for p in ckpt.step_dirs(tmp_path / "checkpoints")}
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        steps = ckpt.step_dirs(tmp_path / "checkpoints")
        assert steps and all(ckpt.problem(s) is None for s in steps)
        assert all(snapshot(p) == before[p.name] for p in steps if p.name in before)
    # the next write removes what the killed writers left behind
    ckpt.save(tmp_path, 99_999, __import__("torch").nn.Linear(2, 2), None, {})
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if ".tmp-" in p.name]
