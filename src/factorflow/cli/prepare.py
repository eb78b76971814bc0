"""`factorflow prepare`: real video -> aligned face crops in LRW frame layout."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from factorflow.data.readers import LAYOUTS


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


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from factorflow.data.prepare import prepare

    summary = prepare(
        args.input,
        args.out,
        layout=args.layout,
        size=args.size,
        frames=args.frames,
        split=args.split,
        overwrite=args.overwrite,
        progress=lambda jobs: tqdm(jobs, desc="prepare", unit="video"),
        smooth_s=args.smooth,
        max_gap_s=args.max_gap,
        static=args.static,
    )
    for report in summary.failed:
        print(f"factorflow prepare: skipped {report.source}: {report.error}", file=sys.stderr)
    done = [r for r in summary.reports if not r.error]
    frames = sum(c["frames"] for r in done for c in r.clips)
    rate = sum(r.detected for r in done) / max(1, sum(r.frames for r in done))
    jitter = float(np.median([r.mouth_jitter_px for r in done]))
    print(
        f"wrote {summary.num_clips} clips ({frames} frames of {args.size}x{args.size}) from "
        f"{len(done)}/{len(summary.reports)} videos to {summary.out}: face in "
        f"{100 * rate:.1f}% of frames, median mouth jitter {jitter:.2f} px"
    )
    return 0
