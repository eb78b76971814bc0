"""MI bounds against first principles and the closed form for correlated Gaussians."""

from __future__ import annotations

import math

import pytest
import torch

from factorflow.factor import bounds


def test_infonce_is_capped_at_log_batch_and_zero_for_a_blind_critic() -> None:
    n = 16
    perfect = 50.0 * torch.eye(n)
    assert torch.allclose(bounds.infonce(perfect), torch.full((n,), math.log(n)), atol=1e-6)
    assert torch.allclose(bounds.infonce(torch.full((n, n), 3.0)), torch.zeros(n), atol=1e-6)


def test_nwj_matches_its_definition() -> None:
    torch.manual_seed(0)
    scores = torch.randn(7, 7)
    off = ~torch.eye(7, dtype=torch.bool)
    expected = scores.diagonal() - torch.stack(
        [torch.exp(scores[i][off[i]] - 1).mean() for i in range(7)]
    )
    assert torch.allclose(bounds.nwj(scores), expected, atol=1e-6)


def test_club_closed_form_matches_the_pairwise_sum() -> None:
    torch.manual_seed(0)
    mean, logvar, y = torch.randn(9, 3), torch.randn(9, 3), torch.randn(9, 3)
    log_q = torch.stack(
        [
            bounds.gaussian_log_likelihood(mean[i].expand(9, 3), logvar[i].expand(9, 3), y)
            for i in range(9)
        ]
    )  # log_q[i, j] = log q(y_j | x_i)
    expected = log_q.diagonal() - log_q.mean(1)
    assert torch.allclose(bounds.club(mean, logvar, y), expected, atol=1e-5)
    normal = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    assert torch.allclose(
        bounds.gaussian_log_likelihood(mean, logvar, y), normal.log_prob(y).sum(1), atol=1e-5
    )


def test_bad_scores_are_named() -> None:
    with pytest.raises(ValueError, match=r"\[N, N\]"):
        bounds.infonce(torch.zeros(3, 4))
