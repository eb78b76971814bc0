"""`factorflow prepare`: real video -> aligned face crops in LRW frame layout."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from factorflow.data.readers import LAYOUTS

__all__ = ["add_parser", "run"]


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="a video file or a folder of videos/clips")
    p.add_argument("--out", required=True, help="dataset folder to create (LRW frame layout)")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="input layout")
    p.add_argument("--size", type=int, default=64, help="crop side in pixels")
    p.add_argument("--frames", type=int, default=16, help="frames per clip cut from long videos")
    p.add_argument("--split", default="train", help="split for inputs that have none")
    p.add_argument("--smooth", type=float, default=0.04, help="landmark smoothing sigma, seconds")
    p.add_argument("--max-gap", type=float, default=0.2, help="longest gap to interpolate, s")
    p.add_argument(
        "--static", action="store_true", help="detect faces in every frame (no tracking)"
    )
    p.add_argument(
        "--force",
        "--overwrite",
        dest="overwrite",
        action="store_true",
        help="replace a non-empty --out",
    )
    p.add_argument(
        "--workers", type=int, default=0, help="worker processes (0: every core); resumable"
    )
    p.add_argument(
        "--shards",
        action="store_true",
        help="write --out as tar shards of whole clips (as `factorflow shard`) instead of frames",
    )
    p.add_argument("--clips-per-shard", type=int, default=1000, help="with --shards")


def run(args: argparse.Namespace) -> int:
    from factorflow.data.prepare.parallel import prepare_parallel as prepare
    from factorflow.io import check_output

    out = Path(args.out)
    if args.shards and args.clips_per_shard < 1:
        raise ValueError(f"--clips-per-shard {args.clips_per_shard}: expected at least 1")
    check_output(out, args.overwrite, inputs=[args.input])
    if args.shards:
        out.parent.mkdir(parents=True, exist_ok=True)
        frames_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.frames-", dir=out.parent))
        try:
            summary = _prepare(args, prepare, frames_dir / "data")
            from factorflow.data.shards import convert

            convert(frames_dir / "data", out, "lrw", args.clips_per_shard, overwrite=True)
            shutil.copy(frames_dir / "data" / "meta.json", out / "meta.json")  # per-video reports
        finally:
            shutil.rmtree(frames_dir, ignore_errors=True)
    else:
        summary = _prepare(args, prepare, out)
    _report(args, summary)
    return 0


def _prepare(args: argparse.Namespace, prepare, out: Path):
    from tqdm import tqdm

    return prepare(
        args.input,
        out,
        layout=args.layout,
        size=args.size,
        frames=args.frames,
        split=args.split,
        overwrite=args.overwrite,
        workers=args.workers or None,
        progress=lambda done, total: tqdm(done, total=total, desc="prepare", unit="source"),
        smooth_s=args.smooth,
        max_gap_s=args.max_gap,
        static=args.static,
    )


def _report(args: argparse.Namespace, summary) -> None:
    for report in summary.failed:
        print(f"factorflow prepare: skipped {report.source}: {report.error}", file=sys.stderr)
    done = [r for r in summary.reports if not r.error]
    frames = sum(c["frames"] for r in done for c in r.clips)
    rate = sum(r.detected for r in done) / max(1, sum(r.frames for r in done))
    jitter = float(np.median([r.mouth_jitter_px for r in done]))
    print(
        f"wrote {summary.num_clips} clips ({frames} frames of {args.size}x{args.size}) from "
        f"{len(done)}/{len(summary.reports)} videos to {args.out}: face in "
        f"{100 * rate:.1f}% of frames, median mouth jitter {jitter:.2f} px"
        + (" (as shards)" if args.shards else "")
    )
