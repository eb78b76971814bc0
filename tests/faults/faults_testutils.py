"""Fault-injection helpers: byte snapshots, the CLI in-process, one-line error checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from factorflow.cli.main import main

RUN_OVERRIDES = [
    "train.max_steps=6",
    "train.ckpt_every=2",
    "train.val_every=100",
    "train.sample_every=100",
    "train.log_every=2",
    "train.keep_last=50",
    "train.tensorboard=false",
]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones included) -> its bytes."""
    root = Path(root)
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    """Run `factorflow ARGV` in this process -> (exit status, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line_error(err: str) -> str:
    """The error line of a failed command (its stderr may hold log lines above it)."""
    lines = [line for line in err.strip().splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]
