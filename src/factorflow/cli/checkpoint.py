"""`factorflow checkpoint`: verify a checkpoint, or record the SHA-256 of its files (`--record`)
for one saved by an older version or copied by hand."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="a checkpoint folder (holding state.json) or a run")
    p.add_argument(
        "--record",
        action="store_true",
        help="record the size and SHA-256 of its files in state.json (every step of a run); "
        "only for files you trust: a record vouches for them",
    )


def run(args: argparse.Namespace) -> int:
    from factorflow import checkpoint as ckpt

    if not args.record:
        step = ckpt.resolve(args.path, optimizer=True)
        print(f"checkpoint {step}: intact (every file matches its recorded SHA-256)")
        return 0
    steps = [args.path] if (args.path / "state.json").exists() else _steps(args.path)
    for step in steps:
        ckpt.record(step)
    shown = steps[0] if len(steps) == 1 else f"{len(steps)} checkpoints in {args.path}"
    print(f"recorded the SHA-256 of the files of {shown}")
    return 0


def _steps(path: Path) -> list[Path]:
    from factorflow import checkpoint as ckpt

    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    steps = ckpt.step_dirs(folder) if folder.is_dir() else []
    if not steps:
        raise FileNotFoundError(f"{path}: no checkpoint (state.json or {folder}/step_NNNNNNNN/)")
    return steps
