"""A corpus with LRW's shape written straight into shards: WORDS x CLIPS x 29 frames.

Frames are tiny and cheap (a per-clip colour, a mouth-like bar whose height follows a per-word
trajectory, noise): the point is the corpus's shape and size, not its look. Clips are written in a
shuffled order, as `factorflow shard` does, so every shard holds many words. Speakers are labels
only (LRW ships none; here clip c of a word is spoken by speaker c % SPEAKERS).

    python benchmarks/simulate_lrw.py --out data/lrw-sim --words 500 --clips 200 --size 16
    python benchmarks/simulate_lrw.py --out data/lrw-sim --words 500 --clips 1000 --val 50 --test 50
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from factorflow.data.shards import ShardWriter

LRW_FRAMES = 29


def clip_frames(word: int, clip: int, frames: int, size: int, rng: np.random.Generator):
    """uint8 [frames, size, size, 3]: colour of the clip, bar height from the word."""
    t = np.arange(frames)
    opening = 0.5 + 0.5 * np.sin(2 * np.pi * (t / frames) * (1 + word % 5) + word)
    image = np.empty((frames, size, size, 3), np.uint8)
    image[:] = rng.integers(40, 215, 3, dtype=np.uint8)
    rows = np.arange(size)[None, :, None]
    top, height = size // 2, 1 + np.round(opening * size / 4).astype(int)
    bar = (rows >= top) & (rows < top + height[:, None, None])
    image[np.broadcast_to(bar, image.shape[:3])] = 20
    image += rng.integers(0, 8, image.shape, dtype=np.uint8)
    return image


def simulate(
    out: str,
    words: int = 500,
    clips: dict[str, int] | None = None,
    frames: int = LRW_FRAMES,
    size: int = 16,
    speakers: int = 1000,
    clips_per_shard: int = 1000,
    seed: int = 0,
) -> dict:
    """Write the corpus; returns the shard index."""
    clips = clips or {"train": 10}
    names = [f"W{w:03d}" for w in range(words)]
    writer = ShardWriter(out, clips_per_shard)
    try:
        for s, (split, per_word) in enumerate(clips.items()):
            order = np.random.default_rng([seed, s]).permutation(words * per_word)
            for n in order.tolist():
                word, clip = divmod(n, per_word)
                rng = np.random.default_rng([seed, s, n])
                writer.add(
                    clip_frames(word, clip, frames, size, rng),
                    split,
                    f"{names[word]}_{clip:05d}",
                    names[word],
                    f"S{clip % speakers:04d}",
                )
    except BaseException:
        writer.abort()
        raise
    return writer.close(names, extra={"simulated": "lrw-shape"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--words", type=int, default=500)
    p.add_argument("--clips", type=int, default=200, help="training clips per word")
    p.add_argument("--val", type=int, default=0, help="val clips per word")
    p.add_argument("--test", type=int, default=0, help="test clips per word")
    p.add_argument("--frames", type=int, default=LRW_FRAMES)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--speakers", type=int, default=1000)
    p.add_argument("--clips-per-shard", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    counts = {"train": args.clips, "val": args.val, "test": args.test}
    start = time.time()
    index = simulate(
        args.out,
        args.words,
        {k: v for k, v in counts.items() if v},
        args.frames,
        args.size,
        args.speakers,
        args.clips_per_shard,
        args.seed,
    )
    total = sum(s["clips"] for shards in index["splits"].values() for s in shards)
    elapsed = time.time() - start
    print(
        f"wrote {total} clips of {args.frames} frames {args.size}x{args.size} "
        f"({args.words} words) in {sum(map(len, index['splits'].values()))} shards to "
        f"{args.out} in {elapsed:.1f} s ({total / elapsed:.0f} clips/s)"
    )


if __name__ == "__main__":
    main()
