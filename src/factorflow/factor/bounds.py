"""Mutual-information bounds (InfoNCE, NWJ, CLUB) as pure functions and their small networks.
`factorflow.metrics.information.estimate_mi` fits one of them to samples as a measurement.

Conventions. A critic scores every pairing of a batch: ``scores[i, j] = f(x_i, y_j)`` [N, N], so the
diagonal holds the joint pairs and the off-diagonal entries stand in for the product of marginals.
Each bound returns per-sample terms [N] whose mean is the bound (nats); callers weight and reduce.

- InfoNCE (van den Oord et al. 2018): a lower bound, at most log N.
- NWJ (Nguyen, Wainwright & Jordan 2010; the f-divergence bound): a lower bound, unbiased in the
  batch but of high variance when I is large.
- CLUB (Cheng et al. 2020): an upper bound when the variational q(y | x) matches p(y | x); with a
  Gaussian q it is loose (for correlated Gaussians it reaches rho^2 / (1 - rho^2) per dimension).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "METHODS",
    "GaussianQ",
    "SeparableCritic",
    "club",
    "gaussian_log_likelihood",
    "infonce",
    "nwj",
]

METHODS = ("infonce", "nwj", "club")


def _check_scores(scores: Tensor) -> int:
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(f"critic scores must be [N, N] with N >= 2, got {tuple(scores.shape)}")
    return scores.shape[0]


def infonce(scores: Tensor) -> Tensor:
    """InfoNCE lower bound terms [N]: ``s_ii - logsumexp_j s_ij + log N``. scores [N, N]."""
    n = _check_scores(scores)
    return scores.diagonal() - scores.logsumexp(1) + math.log(n)


def nwj(scores: Tensor) -> Tensor:
    """NWJ lower bound terms [N]: ``s_ii - exp(-1) * mean_{j != i} exp(s_ij)``. scores [N, N].

    With the optimal critic ``1 + log p(y|x) / p(y)`` the bound is tight.
    """
    n = _check_scores(scores)
    off = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    # exp(s - 1) summed in log space first, so a large score overflows only when the bound does.
    marginal = (scores - 1).masked_fill(~off, float("-inf")).logsumexp(1) - math.log(n - 1)
    return scores.diagonal() - marginal.exp()


def gaussian_log_likelihood(mean: Tensor, logvar: Tensor, y: Tensor) -> Tensor:
    """log N(y; mean, exp(logvar)) summed over features -> [N]. All inputs [N, D]."""
    return -0.5 * ((y - mean).square() * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(1)


def club(mean: Tensor, logvar: Tensor, y: Tensor) -> Tensor:
    """CLUB upper bound terms [N]: ``log q(y_i | x_i) - mean_j log q(y_j | x_i)``.

    mean, logvar: [N, D], the Gaussian q(y | x_i) of each row; y: [N, D]. The mean over j is taken
    in closed form (O(N D), no [N, N, D] tensor).
    """
    if mean.shape != y.shape or logvar.shape != y.shape or y.dim() != 2:
        raise ValueError(
            f"club expects mean, logvar and y of one shape [N, D], got "
            f"{tuple(mean.shape)}, {tuple(logvar.shape)}, {tuple(y.shape)}"
        )
    inv_var = torch.exp(-logvar)
    positive = (y - mean).square()
    # mean_j (y_j - mu_i)^2 = mean_j y_j^2 - 2 mu_i mean_j y_j + mu_i^2
    negative = y.square().mean(0) - 2 * mean * y.mean(0) + mean.square()
    return 0.5 * ((negative - positive) * inv_var).sum(1)


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    layers = [nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, out))


class SeparableCritic(nn.Module):
    """``f(x, y) = g(x) . h(y) / sqrt(dim)`` with two MLPs: all N^2 scores for the cost of 2N
    network evaluations. x [N, dx], y [N, dy] -> scores [N, N]."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 64, dim: int = 32) -> None:
        super().__init__()
        self.g = _mlp(x_dim, hidden, dim)
        self.h = _mlp(y_dim, hidden, dim)
        self.scale = dim**-0.5

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.g(x) @ self.h(y).T * self.scale


class GaussianQ(nn.Module):
    """The variational q(y | x) of CLUB: a diagonal Gaussian whose mean and log-variance are MLPs
    of x. x [N, dx] -> (mean, logvar), each [N, dy]; logvar is bounded to (-bound, bound) by a
    tanh (a small bound keeps 1 / variance, which scales CLUB's gradients, moderate)."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 64, bound: float = 10.0) -> None:
        super().__init__()
        self.net = _mlp(x_dim, hidden, 2 * y_dim)
        self.bound = bound

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.net(x).chunk(2, dim=1)
        return mean, self.bound * torch.tanh(logvar / self.bound)
