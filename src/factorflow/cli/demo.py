"""`factorflow demo`: the main job on the built-in default (see factorflow.demo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from factorflow.cli.main import CLIError

__all__ = ["add_parser", "run"]


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument(
        "--train",
        action="store_true",
        help="train the AF model now instead of loading the shipped checkpoint",
    )
    p.add_argument("--pairs", type=int, default=24, help="evaluation (target, driver) pairs")
    p.add_argument(
        "--ship",
        action="store_true",
        help="with --train: store the new checkpoint as the package's shipped one "
        "(src/factorflow/assets/demo-af)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an --out holding other files; replace a dataset in OUT/data that is "
        "not the demo's",
    )
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from factorflow.demo import ASSETS, run_demo
    from factorflow.io import check_output

    if args.ship and not args.train:
        raise CLIError("--ship stores a newly trained checkpoint: it needs --train")
    # The demo's own check (demo.check_out) decides what an existing --out may hold.
    check_output(args.out, True, inputs=[ASSETS])
    result = run_demo(
        args.out,
        train=args.train,
        pairs=args.pairs,
        progress=not args.no_progress,
        ship_to=ASSETS / "demo-af" if args.ship else None,
        force=args.force,
    )
    shipped = f"; shipped the checkpoint to {ASSETS / 'demo-af'}" if args.ship else ""
    print(f"demo done in {result.seconds / 60:.1f} min: open {result.out / 'index.html'}{shipped}")
    return 0
