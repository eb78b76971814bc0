import math

import pytest
import torch

from factorflow.metrics import bootstrap as bs
from factorflow.metrics.classifiers import pearson


def test_counts_resample_every_pair_set_once_per_draw():
    counts = bs.resample_counts(50, draws=300, seed=1)
    assert counts.shape == (300, 50)
    assert torch.all(counts.sum(1) == 50)
    assert torch.equal(counts, bs.resample_counts(50, draws=300, seed=1))
    assert not torch.equal(counts, bs.resample_counts(50, draws=300, seed=2))
    with pytest.raises(ValueError, match="at least one pair"):
        bs.resample_counts(0)


def test_mean_interval_covers_the_truth_of_a_known_distribution():
    # 20 data sets of 96 pairs x 16 frames from N(25, 2^2) per pair: the 95% interval of the mean
    # must contain 25 in (nearly) all of them and have about the textbook width.
    gen = torch.Generator().manual_seed(0)
    covered = 0
    for k in range(20):
        per_pair = 25 + 2 * torch.randn(96, 1, generator=gen)
        values = per_pair + 0.1 * torch.randn(96, 16, generator=gen)
        stat = bs.PairMeans.of(values)
        low, high = bs.interval(stat, bs.resample_counts(96, 1000, seed=k))
        covered += low <= 25 <= high
        assert low < stat.value < high
        assert high - low == pytest.approx(2 * 1.96 * 2 / math.sqrt(96), rel=0.3)
    assert covered >= 17


def test_constant_input_gives_a_zero_width_interval():
    stat = bs.PairMeans.of(torch.full((30, 8), 29.3))
    low, high = bs.interval(stat, bs.resample_counts(30, 200))
    assert stat.value == pytest.approx(29.3)
    assert low == pytest.approx(29.3) and high == pytest.approx(29.3)


def test_missing_frames_are_left_out_like_the_point_value():
    values = torch.tensor([[1.0, float("nan")], [3.0, 5.0]])
    stat = bs.PairMeans.of(values)
    assert stat.value == pytest.approx(3.0)  # mean of the finite frames
    # a resample holding pair 0 twice: (1 + 1) / 2
    assert float(stat.resampled(torch.tensor([[2.0, 0.0]], dtype=torch.float64))[0]) == 1.0


def test_correlation_matches_pearson_and_resamples_whole_pairs():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 16, generator=gen)
    y = 0.8 * x + 0.6 * torch.randn(40, 16, generator=gen)
    stat = bs.PairCorrelation.of(x, y)
    assert stat.value == pytest.approx(pearson(x, y), abs=1e-9)
    one = torch.zeros(1, 40, dtype=torch.float64)
    one[0, :5] = 1
    assert float(stat.resampled(one)[0]) == pytest.approx(pearson(x[:5], y[:5]), abs=1e-9)
    low, high = bs.interval(stat, bs.resample_counts(40, 500))
    assert low < stat.value < high and low > 0.5 and high < 0.95
    # a perfect correlation stays perfect under every resample
    low, high = bs.interval(bs.PairCorrelation.of(x, 2 * x + 1), bs.resample_counts(40, 100))
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)


def test_paired_difference_cancels_what_the_pairs_share():
    gen = torch.Generator().manual_seed(4)
    shared = 10 * torch.randn(60, 4, generator=gen)  # pair difficulty, common to both methods
    a = bs.PairMeans.of(shared + 1.0)
    b = bs.PairMeans.of(shared + 0.01 * torch.randn(60, 4, generator=gen))
    diff, (low, high) = bs.paired_difference(a, b, bs.resample_counts(60, 500))
    assert diff == pytest.approx(1.0, abs=0.01)
    assert 0.98 < low < high < 1.02  # far narrower than either method's own interval
