"""`estimate_mi`: fit one of the MI bounds of `factorflow.factor.bounds` to samples and report it
on held-out pairs (nats), for measuring what a representation holds."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from factorflow.factor.bounds import (
    METHODS,
    GaussianQ,
    SeparableCritic,
    club,
    gaussian_log_likelihood,
    infonce,
    nwj,
)

__all__ = ["estimate_mi"]


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
