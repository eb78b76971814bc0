"""`factorflow shard`: any corpus folder (synth, prepare, LRW, GRID, videos) -> tar shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from factorflow.data.readers import LAYOUTS

__all__ = ["add_parser", "run"]


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="corpus folder (any reader layout)")
    p.add_argument("--out", required=True, type=Path, help="shard folder to create")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="input layout")
    p.add_argument("--clips-per-shard", type=int, default=1000, help="clips in each tar file")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    from factorflow.data.shards import convert
    from factorflow.io import check_output

    if args.clips_per_shard < 1:
        raise ValueError(f"--clips-per-shard {args.clips_per_shard}: expected at least 1")
    check_output(args.out, args.force, inputs=[args.data])
    index = convert(
        args.data,
        args.out,
        layout=args.layout,
        clips_per_shard=args.clips_per_shard,
        overwrite=args.force,
    )
    counts = {split: sum(s["clips"] for s in shards) for split, shards in index["splits"].items()}
    shown = ", ".join(f"{split} {n} clips" for split, n in counts.items())
    files = sum(len(shards) for shards in index["splits"].values())
    print(
        f"wrote {files} shards to {args.out}: {shown}; {len(index['words'])} words; "
        f"{index['landmarks']} clips with landmarks"
    )
    return 0
