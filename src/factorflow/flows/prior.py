"""Diagonal Gaussian priors of the Glow latents: fixed, learned, and conv-parametrised (split)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from factorflow.flows.coupling import zero_conv3x3

__all__ = ["GaussianPrior", "gaussian_log_prob", "gaussian_sample"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_prob(z: Tensor, mean: Tensor, logstd: Tensor) -> Tensor:
    """log N(z; mean, exp(logstd)^2) summed over all but the batch dimension -> [B].

    ``mean``/``logstd`` broadcast against ``z`` [B, ...].
    """
    # Reducing each term separately makes fewer full-size temporaries than one elementwise logp.
    dims = tuple(range(1, z.dim()))
    sq = ((z - mean) * torch.exp(-logstd)).square().sum(dims)
    log_norm = logstd.expand(z.shape).sum(dims)
    return -0.5 * sq - log_norm - _HALF_LOG_2PI * z[0].numel()


def gaussian_sample(
    mean: Tensor,
    logstd: Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw ``mean + temperature * exp(logstd) * eps``, eps ~ N(0, I) of ``mean``'s shape.

    Temperature 0 returns the mean exactly.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return mean.clone()
    eps = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device, generator=generator)
    return mean + (temperature * torch.exp(logstd)) * eps


class GaussianPrior(nn.Module):
    """Diagonal Gaussian over a ``[channels, H, W]`` latent, parametrised by an optional input.

    - ``in_channels > 0``: ``(mean, logstd) = zero_conv3x3(h)`` of a feature map ``h``
      [B, in_channels, H, W] (Glow's split prior, or a conditional prior);
    - ``in_channels == 0`` and ``learned``: one learned (mean, logstd) per channel (Glow's
      ``learntop``: a zero conv of zeros is its bias);
    - ``in_channels == 0`` and not ``learned``: fixed N(0, I).

    All parametrised variants start at N(0, I).
    """

    def __init__(self, channels: int, in_channels: int = 0, learned: bool = True) -> None:
        super().__init__()
        if channels < 1 or in_channels < 0:
            raise ValueError(
                f"GaussianPrior needs channels >= 1 and in_channels >= 0, "
                f"got {channels}, {in_channels}"
            )
        self.channels = channels
        self.in_channels = in_channels
        if in_channels:
            self.conv: nn.Conv2d | None = zero_conv3x3(in_channels, 2 * channels)
        else:
            self.conv = None
        if in_channels == 0 and learned:
            self.bias: nn.Parameter | None = nn.Parameter(torch.zeros(1, 2 * channels, 1, 1))
        else:
            self.bias = None

    def params(self, like: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(mean, logstd), each [B, channels, H, W] with B, H, W, dtype and device of ``like``
        ([B, *, H, W]); ``h`` [B, in_channels, H, W] is required iff ``in_channels > 0``."""
        b, _, height, width = like.shape
        shape = (b, self.channels, height, width)
        if self.conv is not None:
            expected = (b, self.in_channels, height, width)
            if h is None or tuple(h.shape) != expected:
                got = None if h is None else tuple(h.shape)
                raise ValueError(f"GaussianPrior input must have shape {expected}, got {got}")
            mean, logstd = self.conv(h).chunk(2, dim=1)
            return mean, logstd
        if self.bias is not None:
            mean, logstd = self.bias.chunk(2, dim=1)
            return mean.expand(shape), logstd.expand(shape)
        zeros = like.new_zeros(()).expand(shape)
        return zeros, zeros

    def log_prob(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        """log p(z | h) per sample [B] for ``z`` [B, channels, H, W]."""
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise ValueError(
                f"GaussianPrior expects z of shape [B, {self.channels}, H, W], got {tuple(z.shape)}"
            )
        mean, logstd = self.params(z, h)
        return gaussian_log_prob(z, mean, logstd)

    def extra_repr(self) -> str:
        kind = (
            "conv" if self.conv is not None else ("learned" if self.bias is not None else "fixed")
        )
        return f"channels={self.channels}, in_channels={self.in_channels}, {kind}"
