"""Bootstrap intervals: factorflow's shared resample counts against scipy.stats.bootstrap.

    python benchmarks/bootstrap_compare.py --pairs 24 --frames 29

A mean over pairs' frames (like PSNR) and a Pearson r over all frames (like opening r), both
2000 resamples of whole pairs, seed 0, 95% percentile intervals. Three intervals per figure:
factorflow's (torch generator); scipy's (numpy generator, `paired=True`); and factorflow's
statistic under scipy's own resample indices, which shows whether any difference is the
generator alone. Prints the intervals, the largest gap, and time per interval.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from factorflow.metrics.bootstrap import (
    DRAWS,
    PairCorrelation,
    PairMeans,
    interval,
    percentile_interval,
    resample_counts,
)


def scipy_interval(stat, seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    columns = (
        (stat.sums.numpy(), stat.counts.numpy())
        if isinstance(stat, PairMeans)
        else tuple(stat.moments.numpy().T)
    )

    def statistic(*cols, axis=-1):
        sums = torch.from_numpy(np.stack([c.sum(axis) for c in cols], -1))
        if isinstance(stat, PairMeans):
            return (sums[..., 0] / sums[..., 1]).numpy()
        return PairCorrelation._r(sums).numpy()

    result = bootstrap(
        columns,
        statistic,
        n_resamples=DRAWS,
        paired=True,
        vectorized=True,
        method="percentile",
        confidence_level=0.95,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def scipy_counts(n: int, seed: int) -> torch.Tensor:
    """The resamples scipy draws for `paired=True` (one index matrix), as factorflow's counts."""
    picks = np.random.default_rng(seed).integers(0, n, (DRAWS, n))
    counts = np.zeros((DRAWS, n))
    np.add.at(counts, (np.arange(DRAWS)[:, None], picks), 1)
    return torch.from_numpy(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--frames", type=int, default=29)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(1)
    psnr = (
        25
        + 3 * torch.randn(args.pairs, 1, generator=gen)
        + torch.randn(args.pairs, args.frames, generator=gen)
    )
    x = torch.randn(args.pairs, args.frames, generator=gen)
    scipy_interval(PairMeans.of(psnr), seed=0)  # imports and first-call costs out of the timing
    y = 0.6 * x + 0.8 * torch.randn(args.pairs, args.frames, generator=gen)
    for name, stat in (
        ("mean (PSNR-like)", PairMeans.of(psnr)),
        ("r (opening-like)", PairCorrelation.of(x, y)),
    ):
        start = time.perf_counter()
        ours = interval(stat, resample_counts(args.pairs, seed=0))
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        theirs = scipy_interval(stat, seed=0)
        t_scipy = time.perf_counter() - start
        same_draws = percentile_interval(stat.resampled(scipy_counts(args.pairs, 0)))
        gap = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
        same = max(abs(a - b) for a, b in zip(same_draws, theirs, strict=True))
        width = ours[1] - ours[0]
        print(
            f"{name}: factorflow [{ours[0]:.4f}, {ours[1]:.4f}] {1000 * t_ours:.1f} ms; "
            f"scipy [{theirs[0]:.4f}, {theirs[1]:.4f}] {1000 * t_scipy:.1f} ms; gap {gap:.4f} "
            f"({100 * gap / width:.1f}% of the width); with scipy's draws: gap {same:.1e}"
        )


if __name__ == "__main__":
    main()
