"""Gaussian prior helpers against torch.distributions and sampling statistics."""

from __future__ import annotations

import math

import pytest
import torch

from factorflow.flows import GaussianPrior, gaussian_log_prob, gaussian_sample


def test_gaussian_log_prob_matches_torch_distributions() -> None:
    gen = torch.Generator().manual_seed(0)
    z, mean, logstd = (torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64) for _ in "abc")
    expected = torch.distributions.Normal(mean, logstd.exp()).log_prob(z).sum((1, 2, 3))
    torch.testing.assert_close(gaussian_log_prob(z, mean, logstd), expected)
    # broadcast parameters
    m, s = mean[:1, :, :1, :1], logstd[:1, :, :1, :1]
    expected = torch.distributions.Normal(m, s.exp()).log_prob(z).sum((1, 2, 3))
    torch.testing.assert_close(gaussian_log_prob(z, m, s), expected)


def test_gaussian_sample_temperature() -> None:
    gen = torch.Generator().manual_seed(0)
    mean = torch.full((20000, 1), 2.0)
    logstd = torch.full((20000, 1), 0.5)
    assert torch.equal(gaussian_sample(mean, logstd, 0.0), mean)
    z = gaussian_sample(mean, logstd, 0.5, generator=gen)
    assert abs(z.mean().item() - 2.0) < 0.03
    assert abs(z.std().item() - 0.5 * math.exp(0.5)) < 0.03
    with pytest.raises(ValueError, match="temperature"):
        gaussian_sample(mean, logstd, -1.0)


@pytest.mark.parametrize(
    ("in_channels", "learned", "n_params"), [(0, False, 0), (0, True, 1), (5, True, 2)]
)
def test_prior_variants_start_standard_normal(in_channels: int, learned: bool, n_params: int):
    prior = GaussianPrior(3, in_channels, learned)
    assert len(list(prior.parameters())) == n_params
    z = torch.randn(2, 3, 4, 4)
    h = torch.randn(2, in_channels, 4, 4) if in_channels else None
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum((1, 2, 3))
    torch.testing.assert_close(prior.log_prob(z, h), expected)
    if in_channels:
        with pytest.raises(ValueError, match="input must have shape"):
            prior.log_prob(z)
