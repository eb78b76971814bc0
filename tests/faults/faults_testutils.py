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


def write_lrw(root: Path, size: int = 16, frames: int = 4, clips: dict | None = None) -> Path:
    """A small LRW frame layout: two words, random frames of `size` pixels."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (clips or {"train": 3, "val": 1}).items():
        for word in ("ABOUT", "BELOW"):
            folder = root / split / word
            folder.mkdir(parents=True, exist_ok=True)
            for c in range(n):
                for f in range(frames):
                    pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(folder / f"{word}_{c:05d}_{f:02d}.png")
    return root
