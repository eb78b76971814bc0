"""Bootstrap intervals over pairs for `evaluate`'s figures (EVALUATION.md section 5).

Every figure of a reenactment table is a statistic of P pairs: a mean over the pairs' frames
(PSNR, SSIM, word accuracy) or a Pearson correlation over all their frames (opening r). The
interval resamples whole pairs with replacement, so frames of one clip stay together, and
recomputes the statistic from per-pair sufficient statistics (sums and counts, or the five sums
of a correlation): one resample costs a matrix product, not a re-scoring.

All methods of one evaluation share the same resamples (`resample_counts` from one seed), so
differences between methods can be read pairwise (`paired_difference`).

Intervals are percentile intervals (2.5% and 97.5% quantiles of the resampled statistic).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "DRAWS",
    "LEVEL",
    "PairCorrelation",
    "PairMeans",
    "Statistic",
    "interval",
    "paired_difference",
    "percentile_interval",
    "resample_counts",
]

DRAWS = 2000
LEVEL = 0.95


def resample_counts(n: int, draws: int = DRAWS, seed: int = 0) -> Tensor:
    """[draws, n] float64: how often each of n pairs appears in each bootstrap resample."""
    if n < 1:
        raise ValueError(f"a bootstrap needs at least one pair, got {n}")
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randint(n, (draws, n), generator=gen)
    counts = torch.zeros(draws, n, dtype=torch.float64)
    counts.scatter_add_(1, picks, torch.ones_like(picks, dtype=torch.float64))
    return counts


def percentile_interval(values: Tensor, level: float = LEVEL) -> tuple[float, float]:
    """(low, high) quantiles of resampled statistics [draws]; NaN draws are dropped."""
    values = values[~torch.isnan(values)].double()
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low, high = torch.quantile(values, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


@dataclass(frozen=True)
class PairMeans:
    """A mean over frames, kept per pair: sums [P] and counts [P] of the finite frame values."""

    sums: Tensor
    counts: Tensor

    @classmethod
    def of(cls, values: Tensor) -> PairMeans:
        """Per-frame values [P,T] (NaN = no value, e.g. an empty mask) -> per-pair sums/counts."""
        values = values.double()
        finite = ~torch.isnan(values)
        return cls(torch.where(finite, values, 0.0).sum(1), finite.sum(1).double())

    @property
    def value(self) -> float:
        total = float(self.counts.sum())
        return float(self.sums.sum()) / total if total > 0 else float("nan")

    def resampled(self, counts: Tensor) -> Tensor:
        """The mean under each resample: counts [draws, P] -> [draws]."""
        n = counts @ self.counts
        return torch.where(n > 0, (counts @ self.sums) / n.clamp(min=1e-300), torch.nan)


@dataclass(frozen=True)
class PairCorrelation:
    """Pearson r over all frames of all pairs, kept as per-pair sums [P,5]: n, x, y, xx, yy, xy
    (x, y centred on the overall means first, for numerical stability)."""

    moments: Tensor

    @classmethod
    def of(cls, x: Tensor, y: Tensor) -> PairCorrelation:
        """x, y: [P,T] paired series (e.g. driver's and output's mouth opening per frame)."""
        x, y = x.double(), y.double()
        if x.shape != y.shape or x.dim() != 2:
            raise ValueError(f"expected two [P,T] series, got {tuple(x.shape)}, {tuple(y.shape)}")
        x, y = x - x.mean(), y - y.mean()
        n = torch.full((x.shape[0],), float(x.shape[1]), dtype=torch.float64)
        sums = [n, x.sum(1), y.sum(1), (x * x).sum(1), (y * y).sum(1), (x * y).sum(1)]
        return cls(torch.stack(sums, 1))

    @staticmethod
    def _r(m: Tensor) -> Tensor:
        """[..., 6] summed moments -> r [...] (NaN where either series is constant)."""
        n, sx, sy, sxx, syy, sxy = m.unbind(-1)
        cov = sxy - sx * sy / n
        vx, vy = sxx - sx * sx / n, syy - sy * sy / n
        denom = (vx * vy).clamp(min=0).sqrt()
        scale = torch.maximum(sxx, syy).clamp(min=1e-300)
        return torch.where(denom > 1e-12 * scale, cov / denom.clamp(min=1e-300), torch.nan)

    @property
    def value(self) -> float:
        return float(self._r(self.moments.sum(0)))

    def resampled(self, counts: Tensor) -> Tensor:
        return self._r(counts @ self.moments)


Statistic = PairMeans | PairCorrelation


def interval(
    stat: Statistic, counts: Tensor, scale: float = 1.0, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile interval of `stat` (times `scale`) under the resamples `counts` [draws, P]."""
    return percentile_interval(stat.resampled(counts) * scale, level)


def paired_difference(
    a: Statistic, b: Statistic, counts: Tensor, level: float = LEVEL
) -> tuple[float, tuple[float, float]]:
    """a - b on the same pairs: (point, interval), both resampled with the same `counts`."""
    return a.value - b.value, percentile_interval(a.resampled(counts) - b.resampled(counts), level)
