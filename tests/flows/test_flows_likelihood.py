"""Dequantisation and bits/dim."""

from __future__ import annotations

import math

import pytest
import torch

from factorflow.flows import bits_per_dim, postprocess, preprocess


def test_preprocess_quantises_before_adding_noise() -> None:
    x = torch.tensor([0, 7, 8, 15, 248, 255], dtype=torch.uint8).view(1, 1, 2, 3)
    lo = preprocess(x, 5, noise=False) - 0.5 / 32  # lower edge of each 5-bit bin
    expected_bins = torch.tensor([0, 0, 1, 1, 31, 31], dtype=torch.float32).view(1, 1, 2, 3)
    torch.testing.assert_close(lo, expected_bins / 32 - 0.5)
    gen = torch.Generator().manual_seed(0)
    noisy = preprocess(x.expand(1000, 1, 2, 3), 5, generator=gen)
    assert (noisy >= lo).all() and (noisy < lo + 1 / 32).all()
    assert noisy.min() >= -0.5 and noisy.max() <= 0.5
    assert noisy.std(0).min() > 0.005, "noise spans the bin"


@pytest.mark.parametrize("n_bits", [1, 5, 8])
def test_postprocess_inverts_preprocess(n_bits: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=gen)
    step = 2 ** (8 - n_bits)
    quantised = (x // step) * step + step // 2  # bin centres
    assert torch.equal(postprocess(preprocess(x, n_bits, noise=False), n_bits), quantised)
    noisy = postprocess(preprocess(x, n_bits, generator=gen), n_bits)
    assert (noisy.int() - quantised.int()).abs().max() <= 2 ** (8 - n_bits)
    assert (noisy == quantised).float().mean() > 0.99
    clamped = postprocess(torch.tensor([-3.0, 3.0]), n_bits)
    assert clamped.tolist() == [step // 2, (2**n_bits - 1) * step + step // 2]


def test_bits_per_dim_of_uniform_density_is_n_bits() -> None:
    # The uniform density on [-0.5, 0.5]^D has log p = 0: every n_bits bin has mass 2^-(n_bits D).
    bpd = bits_per_dim(torch.zeros(3), n_dims=12, n_bits=5)
    torch.testing.assert_close(bpd, torch.full((3,), 5.0))
    # A density twice as high everywhere it is supported saves one bit per image.
    bpd = bits_per_dim(torch.full((1,), math.log(2.0)), n_dims=4, n_bits=8)
    torch.testing.assert_close(bpd, torch.tensor([8.0 - 0.25]))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess(torch.zeros(1, 1, 2, 2), 5)
    with pytest.raises(ValueError, match="n_bits"):
        preprocess(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), 9)
