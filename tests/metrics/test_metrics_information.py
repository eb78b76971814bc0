"""estimate_mi: the fitted bounds against closed forms, labels, groups and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from factorflow.factor import bounds
from factorflow.metrics.information import estimate_mi


def correlated_gaussians(rho: float, d: int, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """x, y [n, d] standard normal with corr(x_k, y_k) = rho: I(x; y) = -d/2 log(1 - rho^2)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=gen)
    return x, y


D = 2  # truth up to 1.66 nats: well below log(128) = 4.85, InfoNCE's cap at the default batch


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8, 0.9])
def test_estimates_match_the_closed_form(rho: float) -> None:
    x, y = correlated_gaussians(rho, D, 4000, seed=1)
    truth = -D / 2 * math.log(1 - rho**2)
    est = {m: estimate_mi(x, y, m, steps=300, seed=0) for m in bounds.METHODS}
    # Lower bounds: InfoNCE may fall short (finite batch, finite training), never far above.
    assert truth - 0.25 <= est["infonce"] <= truth + 0.08, (truth, est)
    assert abs(est["nwj"] - truth) <= 0.2, (truth, est)
    # CLUB with the right Gaussian q is an upper bound, reaching D * rho^2 / (1 - rho^2) here.
    club_truth = D * rho**2 / (1 - rho**2)
    assert est["club"] >= truth - 0.05, (truth, est)
    assert abs(est["club"] - club_truth) <= 0.1 * club_truth + 0.05, (club_truth, est)


def test_labels_are_one_hot_encoded() -> None:
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (3000,), generator=gen)
    informative = torch.nn.functional.one_hot(labels, 4).float()
    informative = informative + 0.05 * torch.randn(3000, 4, generator=gen)
    noise = torch.randn(3000, 4, generator=gen)
    full = estimate_mi(informative, labels, "infonce", steps=200)
    none = estimate_mi(noise, labels, "infonce", steps=200)
    assert abs(full - math.log(4)) < 0.15, full
    assert 0 <= none < 0.05, none


def test_groups_keep_near_copies_out_of_the_held_out_split() -> None:
    """Frames of a clip share a label and look alike; labels are independent of the look across
    clips. A frame-level split lets the critic recognise clips, a clip-level split does not."""
    gen = torch.Generator().manual_seed(0)
    clips, frames = 200, 8
    look = torch.randn(clips, 6, generator=gen).repeat_interleave(frames, 0)
    look = look + 0.01 * torch.randn(clips * frames, 6, generator=gen)
    labels = torch.randint(0, 4, (clips,), generator=gen).repeat_interleave(frames)
    clip_ids = torch.arange(clips).repeat_interleave(frames)
    by_frame = estimate_mi(look, labels, "infonce", steps=300)
    by_clip = estimate_mi(look, labels, "infonce", steps=300, groups=clip_ids)
    assert by_frame > 0.5, by_frame
    assert 0 <= by_clip < 0.1, by_clip


def test_bad_inputs_are_named() -> None:
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="unknown MI estimator 'mine'"):
        estimate_mi(x, x, "mine")
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        estimate_mi(x, x[:9])
