"""Reading shards: factorflow's seek reader (in ShardSampler's order) against webdataset's pipeline
(front to back), from a folder and from an HTTP server on 127.0.0.1.

    python benchmarks/shard_reader.py --clips 2000 --per-shard 250 --frames 29 --size 32

Prints clips/s of each, and the ratio factorflow / webdataset. Both decode every clip's frames
(.npy, no pickle); the HTTP readers fetch through webdataset's opener.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def ours(root: str | Path, cache: Path) -> int:
    from factorflow.data.shards import ShardClipDataset, ShardSampler

    data = ShardClipDataset(root, frames=1, cache_dir=cache)
    for index in ShardSampler(data.shard_counts, seed=0):
        data.read_clip(index)
    return len(data)


def theirs(urls: list[str]) -> int:
    import webdataset as wds

    count = 0
    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        np.load(io.BytesIO(sample["npy"]), allow_pickle=False)
        count += 1
    return count


def timed(fn, *args) -> float:
    start = time.perf_counter()
    n = fn(*args)
    return n / (time.perf_counter() - start)


def main() -> None:
    from factorflow.data.shards import write_shards

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--per-shard", type=int, default=250)
    parser.add_argument("--frames", type=int, default=29)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shards"
        clip = rng.integers(0, 256, (args.frames, args.size, args.size, 3), dtype=np.uint8)
        labels = (
            {"split": "train", "clip_id": f"W_{i:05d}", "word": "W"} for i in range(args.clips)
        )
        index = write_shards(((clip, label) for label in labels), root, args.per_shard)
        names = [s["name"] for s in index["splits"]["train"]]
        handler = functools.partial(_Quiet, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        cache = Path(tmp) / "cache"
        rates: dict[str, list[float]] = {}
        for _ in range(2):  # alternated, the best of two kept
            for name, fn, arg in (
                ("folder: factorflow", ours, root),
                ("folder: webdataset", theirs, [str(root / n) for n in names]),
                ("http: factorflow", ours, url),
                ("http: webdataset", theirs, [f"{url}/{n}" for n in names]),
            ):
                rates.setdefault(name, []).append(
                    timed(fn, arg, cache) if fn is ours else timed(fn, arg)
                )
        server.shutdown()
    print(f"{args.clips} clips of {args.frames}x{args.size}x{args.size} in {len(names)} shards")
    for name, runs in rates.items():
        print(f"{name:20s} {max(runs):8.0f} clips/s")
    for where in ("folder", "http"):
        ratio = max(rates[f"{where}: factorflow"]) / max(rates[f"{where}: webdataset"])
        print(f"{where}: factorflow / webdataset = {ratio:.2f}x")


if __name__ == "__main__":
    main()
