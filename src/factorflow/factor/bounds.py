"""Mutual-information bounds (InfoNCE, NWJ, CLUB) as pure functions, their small networks, and
`estimate_mi`, which fits one of them to samples and reports the bound on held-out pairs.

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

import copy
import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

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


def _as_matrix(values: Tensor | np.ndarray, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(values) if isinstance(values, np.ndarray) else values)
    if t.dim() == 1 and not t.is_floating_point():
        labels = t.long()
        if (labels < 0).any():
            raise ValueError(f"{name}: labels must be >= 0, got {int(labels.min())}")
        return F.one_hot(labels, int(labels.max()) + 1).double()
    if t.dim() == 1:
        t = t[:, None]
    if t.dim() != 2:
        raise ValueError(f"{name} must be [N, D] features or [N] integer labels, got {t.shape}")
    return t.double()


def _standardise(train: Tensor, *others: Tensor) -> list[Tensor]:
    mean, std = train.mean(0), train.std(0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant in training: centre only
    return [((v - mean) / std).float() for v in (train, *others)]


def _holdout_mask(
    n: int, holdout: float, groups: Tensor | np.ndarray | None, gen: torch.Generator
) -> Tensor:
    """[n] bool: the held-out samples, a `holdout` fraction of them (of whole groups if given)."""
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    if groups is None:
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.randperm(n, generator=gen)[: int(round(n * holdout))]] = True
        return mask
    ids = torch.as_tensor(np.asarray(groups)).long()
    if ids.shape != (n,):
        raise ValueError(f"groups must be [N] = [{n}] integer ids, got shape {tuple(ids.shape)}")
    unique = ids.unique()
    chosen = unique[torch.randperm(len(unique), generator=gen)]
    sizes = torch.stack([(ids == g).sum() for g in chosen]).cumsum(0)
    held = chosen[: int((sizes < n * holdout).sum()) + 1]
    return torch.isin(ids, held)


def _bound_on(net: nn.Module, method: str, x: Tensor, y: Tensor, batch: int) -> float:
    """Mean of `method`'s bound over consecutive batches of `batch` pairs of x, y."""
    bound = infonce if method == "infonce" else nwj
    values = []
    with torch.no_grad():
        for start in range(0, len(x) - batch + 1, batch):
            xb, yb = x[start : start + batch], y[start : start + batch]
            terms = club(*net(xb), yb) if method == "club" else bound(net(xb, yb))
            values.append(float(terms.mean()))
    return float(np.mean(values))


def estimate_mi(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    method: str = "infonce",
    steps: int = 500,
    seed: int = 0,
    batch_size: int = 128,
    hidden: int = 64,
    lr: float = 3e-3,
    holdout: float = 0.25,
    groups: Tensor | np.ndarray | None = None,
    check_every: int = 25,
) -> float:
    """Estimate I(x; y) in nats by fitting `method`'s network to samples, then evaluating the bound
    on held-out pairs (so an over-fitted critic cannot inflate it).

    x: [N, dx] features. y: [N, dy] features, or [N] integer labels (one-hot encoded). Features
    are standardised with the training split's statistics. The network trains up to `steps` Adam
    steps on minibatches of `batch_size` pairs of the fitting split and keeps the state that
    scores best on a validation split (a `holdout` fraction of the training pairs, checked every
    `check_every` steps): early stopping, because an over-confident critic scores far below zero
    on pairs it has not seen. The held-out split (a `holdout` fraction, shuffled by `seed`) is
    then scored in batches of the same size, so an InfoNCE estimate is capped at
    log(batch_size). method: "infonce" | "nwj" (lower bounds) | "club" (upper bound; it stops
    on the fit of q, its training objective).

    The result is clipped at 0 (mutual information is never negative).

    groups: optional [N] integer ids (e.g. the clip of each frame): the validation and held-out
    splits then take whole groups, so near copies (frames of one clip) never sit on both sides;
    without it a critic can match held-out frames to their clip and the estimate only reflects
    the label counts.
    """
    if method not in METHODS:
        raise ValueError(f"unknown MI estimator {method!r}: choose one of {METHODS}")
    xs, ys = _as_matrix(x, "x"), _as_matrix(y, "y")
    n = len(xs)
    if len(ys) != n:
        raise ValueError(f"x has {n} samples but y has {len(ys)}")
    group_ids = None if groups is None else torch.as_tensor(np.asarray(groups)).long()
    gen = torch.Generator().manual_seed(seed)
    eval_mask = _holdout_mask(n, holdout, group_ids, gen)
    train_idx, eval_idx = (~eval_mask).nonzero()[:, 0], eval_mask.nonzero()[:, 0]
    sub_groups = None if group_ids is None else group_ids[train_idx]
    val_mask = _holdout_mask(len(train_idx), holdout, sub_groups, gen)
    fit_idx, val_idx = train_idx[~val_mask], train_idx[val_mask]
    eval_idx = eval_idx[torch.randperm(len(eval_idx), generator=gen)]  # mixed held-out batches
    val_idx = val_idx[torch.randperm(len(val_idx), generator=gen)]
    if min(len(fit_idx), len(val_idx), len(eval_idx)) < 2:
        raise ValueError(
            f"estimate_mi needs more samples: {n} give {len(fit_idx)} fitting, {len(val_idx)} "
            f"validation and {len(eval_idx)} held-out pairs (holdout {holdout})"
        )
    x_fit, x_val, x_eval = _standardise(xs[fit_idx], xs[val_idx], xs[eval_idx])
    y_fit, y_val, y_eval = _standardise(ys[fit_idx], ys[val_idx], ys[eval_idx])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if method == "club":
            net: nn.Module = GaussianQ(x_fit.shape[1], y_fit.shape[1], hidden)
        else:
            net = SeparableCritic(x_fit.shape[1], y_fit.shape[1], hidden)
    bound = infonce if method == "infonce" else nwj
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    batch = min(batch_size, len(x_fit), len(x_val), len(x_eval))

    def validation() -> float:
        if method == "club":  # q's fit, the quantity it is trained on
            with torch.no_grad():
                return float(gaussian_log_likelihood(*net(x_val), y_val).mean())
        return _bound_on(net, method, x_val, y_val, batch)

    best, best_state = validation(), copy.deepcopy(net.state_dict())
    for step in range(1, steps + 1):
        idx = torch.randperm(len(x_fit), generator=gen)[:batch]
        xb, yb = x_fit[idx], y_fit[idx]
        if method == "club":
            loss = -gaussian_log_likelihood(*net(xb), yb).mean()
        else:
            loss = -bound(net(xb, yb)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % check_every == 0 or step == steps:
            value = validation()
            if value > best:
                best, best_state = value, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    # Even the chosen critic can score below zero on held-out pairs; the bound is then
    # uninformative and I(x; y) >= 0 is the better statement.
    return max(0.0, _bound_on(net, method, x_eval, y_eval, batch))
