"""Stream clips through the training loader: shards against frame folders, clips/s and peak RSS.

Each measurement runs in its own process (so peak RSS is its own): it opens the corpus as `train`
does (`engine.loader.open_split`, clips of 29 frames), then draws batches from the training
`StepLoader` until N clips have passed. RSS is reported after import and setup, and at the peak.
The shard corpora come from `simulate_lrw.py`; the frame-folder baseline is the same simulator's
clips written as LRW frame folders (one PNG per frame), so both read identical clips.

    python benchmarks/stream_loader.py --big 100000 --small 5000 --work /tmp/stream
    python benchmarks/stream_loader.py --big 2000 --small 500 --work /tmp/stream    # smoke
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from simulate_lrw import LRW_FRAMES, simulate  # noqa: E402  (a sibling script)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measure(data: str, clips: int, batch: int, workers: int, size: int) -> dict:
    import torch

    from factorflow.config import DataConfig
    from factorflow.engine.distributed import DistInfo
    from factorflow.engine.loader import StepLoader, open_split

    torch.set_num_threads(1)
    setup_start = time.time()
    cfg = DataConfig(size=size, frames=LRW_FRAMES, batch_size=batch)
    dataset = open_split(Path(data), "train", cfg, "clips")
    loader = StepLoader(dataset, batch, 0, DistInfo(0, 1, 0, torch.device("cpu")), workers)
    batches = loader.iterate(0)
    setup_s = time.time() - setup_start
    rss_setup = _current_rss_mb()
    start, seen, checksum = time.time(), 0, 0
    while seen < clips:
        frames = next(batches)["frames"]
        seen += frames.shape[0]
        checksum += int(frames[:, 0, 0, 0, 0].sum())
    elapsed = time.time() - start
    return {
        "data": data,
        "corpus_clips": len(dataset),
        "clips": seen,
        "setup_s": setup_s,
        "clips_per_s": seen / elapsed,
        "rss_after_setup_mb": rss_setup,
        "peak_rss_mb": _rss_mb(),
        "checksum": checksum,
    }


def write_frame_folders(shards: Path, out: Path) -> None:
    """The clips of a shard corpus as LRW frame folders (one PNG per frame) plus meta.json."""
    from PIL import Image

    from factorflow.data.shards import ShardClipDataset

    data = ShardClipDataset(shards, frames=LRW_FRAMES, cache_items=0)
    clips = []
    for i in range(len(data)):
        frames, label = data.read_clip(i)
        word, number = label["clip_id"].rsplit("_", 1)
        folder = out / "train" / word
        folder.mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"{word}_{number}_{t:02d}.png")
        clips.append(
            {"split": "train", "word": word, "clip": int(number), "speaker": label["speaker"]}
        )
    (out / "meta.json").write_text(json.dumps({"clips": clips}))


def _run(args: argparse.Namespace, data: Path, clips: int) -> dict:
    cmd = [sys.executable, __file__, "--measure", str(data), "--clips", str(clips)]
    cmd += ["--batch", str(args.batch), "--workers", str(args.workers), "--size", str(args.size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", help="folder for the corpora (reused if present); required")
    p.add_argument("--big", type=int, default=100_000, help="clips of the big shard corpus")
    p.add_argument("--small", type=int, default=5000, help="clips of the small corpora")
    p.add_argument("--words", type=int, default=500)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--measure", help=argparse.SUPPRESS)
    p.add_argument("--clips", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.clips, args.batch, args.workers, args.size)))
        return
    if not args.work:
        p.error("--work is required")
    work = Path(args.work)
    corpora = {}
    for name, clips in (("small", args.small), ("big", args.big)):
        path = work / f"shards-{clips}"
        if not (path / "index.json").is_file():
            t = time.time()
            simulate(str(path), args.words, {"train": max(1, clips // args.words)}, size=args.size)
            print(f"simulated {path} in {time.time() - t:.0f} s", flush=True)
        corpora[name] = path
    folders = work / f"frames-{args.small}"
    if not (folders / "meta.json").is_file():
        t = time.time()
        write_frame_folders(corpora["small"], folders)
        print(f"wrote {folders} in {time.time() - t:.0f} s", flush=True)
    rows = [
        ("frame folders", _run(args, folders, args.small)),
        ("shards", _run(args, corpora["small"], args.small)),
        ("shards", _run(args, corpora["big"], args.big)),
    ]
    print(
        f"\n{args.size}x{args.size} clips of {LRW_FRAMES} frames, batch {args.batch}, "
        f"{args.workers} workers, one thread"
    )
    print(
        "| layout | corpus clips | clips streamed | setup s | clips/s "
        "| RSS after setup MB | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['corpus_clips']} | {r['clips']} | {r['setup_s']:.1f} | "
            f"{r['clips_per_s']:.0f} | {r['rss_after_setup_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
        )
    (_, frames), (_, small), (_, big) = rows
    print(
        f"shards / frame folders, clips/s at {args.small} clips: "
        f"{small['clips_per_s'] / frames['clips_per_s']:.2f}x"
    )
    print(
        f"peak RSS, shards {args.big} vs {args.small} clips: "
        f"{big['peak_rss_mb'] / small['peak_rss_mb']:.3f}x "
        f"({big['peak_rss_mb'] - small['peak_rss_mb']:+.0f} MB for "
        f"{args.big / args.small:.0f}x the corpus)"
    )


if __name__ == "__main__":
    main()
