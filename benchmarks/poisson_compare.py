"""Poisson blending: factorflow's sparse solver (`poisson_blend`) against OpenCV's seamlessClone
(`seamless_clone`, which calls it where it applies), pixels and speed side by side.

    python benchmarks/poisson_compare.py --size 128 --repeats 5

A mouth-sized ellipse of one synthetic face pasted into another face (uint8 RGB), at a few sizes
and offsets. Prints max and mean |difference| inside the mask in grey levels (outside, both keep
the target exactly), time per blend (best of `repeats`), and the speed ratio.
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

from factorflow.reenact.poisson import poisson_blend, seamless_clone

TOLERANCE = 8  # grey levels: the most a pixel may differ for seamless_clone to stand in


def face(seed: int, size: int) -> np.ndarray:
    """A smooth uint8 [size,size,3] image with skin-like tones and a few pixels' structure."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([180 + 40 * y, 120 + 30 * x, 100 + 20 * x * y], -1)
    detail = sum(
        rng.uniform(5, 15)
        * np.sin(2 * np.pi * (rng.uniform(2, 9) * x + rng.uniform(2, 9) * y))[..., None]
        for _ in range(4)
    )
    return np.clip(base + detail, 0, 255).astype(np.uint8)


def ellipse(size: int, ry: float, rx: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return ((y - size * 0.65) / ry) ** 2 + ((x - size / 2) / rx) ** 2 <= 1


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.size
    worst = 0
    for ry, rx, offset, mixed in (
        (n / 10, n / 6, (0, 0), False),
        (n / 8, n / 5, (-3, 2), False),
        (n / 6, n / 4, (0, 0), False),
        (n / 8, n / 5, (0, 0), True),
    ):
        source, target, mask = face(1, n), face(2, n), ellipse(n, ry, rx)
        ours = poisson_blend(source, target, mask, offset, mixed)
        cv = seamless_clone(source, target, mask, offset, mixed)
        moved = np.roll(mask, offset, (0, 1))
        diff = np.abs(ours.astype(int) - cv.astype(int))
        assert (diff[~moved] == 0).all()  # both keep every pixel outside the moved mask
        call = (source, target, mask, offset, mixed)
        t_ours = best(functools.partial(poisson_blend, *call), args.repeats)
        t_cv = best(functools.partial(seamless_clone, *call), args.repeats)
        worst = max(worst, int(diff.max()))
        print(
            f"{n}x{n}, mask {int(mask.sum()):5d} px, offset {offset}, mixed={mixed!s:5}: "
            f"max |diff| {diff[moved].max():3d}, mean {diff[moved].mean():.2f} grey levels; "
            f"solver {1000 * t_ours:6.1f} ms, OpenCV {1000 * t_cv:6.1f} ms, "
            f"{t_ours / t_cv:.1f}x faster"
        )
    verdict = "within" if worst <= TOLERANCE else "beyond"
    print(f"largest difference {worst} grey levels: {verdict} the tolerance of {TOLERANCE}")


if __name__ == "__main__":
    main()
