"""Dequantisation and bits/dim for discrete images modelled by a continuous flow.

A flow gives a density p(x) on continuous x. For 8-bit data reduced to ``n_bits``, each image is a
bin of side 1/2**n_bits in [-0.5, 0.5]^D; adding uniform noise of exactly that width (after
quantising to n_bits) makes E[log p(x + u)] a lower bound of the discrete log-likelihood
log P(bin) - D * log(2**n_bits) (Theis et al. 2016). Noise and the constant must match the
quantisation: the thesis code added 5-bit noise and the 5-bit constant to 8-bit data, so its
bits/dim was not a valid likelihood.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

__all__ = [
    "UniformSource",
    "bits_per_dim",
    "check_finite",
    "dequantize",
    "postprocess",
    "preprocess",
]


class UniformSource(Protocol):
    """Draws U(0,1) noise of a shape (e.g. `factorflow.models.BatchRandom`)."""

    def rand(self, shape: tuple[int, ...]) -> Tensor: ...


def _check_bits(n_bits: int) -> None:
    if not isinstance(n_bits, int) or not 1 <= n_bits <= 8:
        raise ValueError(f"n_bits must be an integer in 1..8, got {n_bits!r}")


def preprocess(
    x: Tensor,
    n_bits: int,
    noise: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """uint8 images [B, C, H, W] -> floats in [-0.5, 0.5] for the flow.

    Quantise to ``n_bits`` first (``floor(x / 2**(8 - n_bits))``), then map bin ``q`` to
    ``q / 2**n_bits - 0.5`` plus U(0, 1/2**n_bits) noise (``noise=True``, training and likelihood
    evaluation) or plus half a bin (``noise=False``, the bin centre, deterministic).
    """
    _check_bits(n_bits)
    if x.dtype != torch.uint8:
        raise ValueError(f"preprocess expects uint8 images, got dtype {x.dtype}")
    bins = 2**n_bits
    q = torch.div(x, 2 ** (8 - n_bits), rounding_mode="floor").to(dtype)
    if noise:
        u = torch.rand(x.shape, dtype=dtype, device=x.device, generator=generator)
    else:
        u = torch.full_like(q, 0.5)
    return (q + u) / bins - 0.5


def dequantize(frames: Tensor, n_bits: int, rand: UniformSource | None) -> Tensor:
    """uint8 [B,C,H,W] -> float in [-0.5, 0.5]: quantised to n_bits, plus one bin of uniform noise
    drawn from `rand`. Without `rand` the bin centre is used (deterministic encodings for
    reenactment and evaluation)."""
    x = preprocess(frames, n_bits, noise=False)
    if rand is None:
        return x
    width = 1.0 / 2**n_bits
    return x + width * (rand.rand(tuple(x.shape)).to(x.device, x.dtype) - 0.5)


def check_finite(x: Tensor) -> None:
    """FloatingPointError unless every value of a decoded image batch is finite: a NaN would
    otherwise become a black (or any) pixel without a word."""
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise FloatingPointError(
            f"the model decoded non-finite values (NaN or inf) in {bad} of {x.numel()} pixels: "
            "its weights are corrupt or diverged; nothing was written"
        )


def postprocess(x: Tensor, n_bits: int) -> Tensor:
    """Floats [B, C, H, W] in [-0.5, 0.5] -> uint8 images: the ``n_bits`` bin containing each
    value (clamped to the valid bins), mapped to the 8-bit value at the bin's centre,
    ``bin * 2**(8 - n_bits) + 2**(7 - n_bits)``.

    The centre, not the lower edge: an 8-bit pixel is uniform within its bin, so the lower edge
    is off by half a bin on average (at 5 bits: 4 grey levels, a 35 dB PSNR ceiling on any
    decoded image) where the centre is unbiased (41 dB)."""
    _check_bits(n_bits)
    check_finite(x)
    bins = 2**n_bits
    step = 2 ** (8 - n_bits)
    q = torch.floor((x + 0.5) * bins).clamp(0, bins - 1)
    return (q * step + step // 2).to(torch.uint8)


def bits_per_dim(log_prob: Tensor, n_dims: int, n_bits: int) -> Tensor:
    """Discrete bits/dim [B] from the continuous log-density ``log_prob`` [B] of dequantised data
    in [-0.5, 0.5]: ``(-log_prob + n_dims * log(2**n_bits)) / (n_dims * log 2)``."""
    _check_bits(n_bits)
    if n_dims < 1:
        raise ValueError(f"n_dims must be >= 1, got {n_dims}")
    return (-log_prob + n_dims * n_bits * math.log(2.0)) / (n_dims * math.log(2.0))
