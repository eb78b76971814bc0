"""The bootstrap is scipy's percentile bootstrap over pairs: under scipy's draws, the same interval
(benchmarks/bootstrap_compare.py; the generators differ, so the same seed gives other draws)."""

import numpy as np
import pytest
import torch

from factorflow.metrics.bootstrap import PairMeans, percentile_interval


def test_pair_mean_interval_is_scipys_under_its_draws():
    stats = pytest.importorskip("scipy.stats")
    values = torch.randn(12, 5, generator=torch.Generator().manual_seed(0)) + 3
    stat = PairMeans.of(values)
    draws = 500
    picks = np.random.default_rng(7).integers(0, 12, (draws, 12))  # what scipy draws, paired
    counts = np.zeros((draws, 12))
    np.add.at(counts, (np.arange(draws)[:, None], picks), 1)
    ours = percentile_interval(stat.resampled(torch.from_numpy(counts)))
    result = stats.bootstrap(
        (stat.sums.numpy(), stat.counts.numpy()),
        lambda s, c, axis=-1: s.sum(axis) / c.sum(axis),
        n_resamples=draws,
        paired=True,
        vectorized=True,
        method="percentile",
        rng=np.random.default_rng(7),
    )
    interval = result.confidence_interval
    np.testing.assert_allclose(ours, (interval.low, interval.high), atol=1e-12)
