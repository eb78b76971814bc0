"""Activation normalisation (Glow) with explicit, saved data-dependent initialisation."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from factorflow.flows.base import Bijection

__all__ = ["ActNorm"]


class ActNorm(Bijection):
    """Per-channel affine map ``y = x * exp(log_scale) + bias`` on ``[B, C, H, W]`` inputs.

    Data-dependent initialisation sets ``log_scale``/``bias`` so that the batch given to
    :meth:`initialize` comes out with zero mean and unit variance per channel. Whether that has
    happened is the ``initialized`` buffer, so it travels with ``state_dict``: a reloaded model
    never re-initialises. An uninitialised layer initialises itself on its first forward in
    training mode; call :meth:`initialize` (or ``Glow.initialize``) explicitly before wrapping a
    model in DDP.

    logdet = H * W * sum(log_scale).
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        if num_channels < 1:
            raise ValueError(f"ActNorm needs num_channels >= 1, got {num_channels}")
        self.num_channels = num_channels
        self.eps = eps
        self.log_scale = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))
        # Mirrors the buffer once it is known to be True, so the training-mode check does not
        # synchronise a GPU with the host on every call; reset whenever a state_dict is loaded.
        self._known_initialized = False

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"ActNorm({self.num_channels}) expects [B, {self.num_channels}, H, W], "
                f"got {tuple(x.shape)}"
            )

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set parameters from the per-channel mean/std of ``x`` [B, C, H, W] and mark initialised.

        A channel whose std is at most ``eps`` (constant over the batch) keeps unit scale and is
        only centred: dividing by a floored std would multiply every later deviation of that
        channel by up to ``1/eps``.
        """
        self._check(x)
        x = x.detach()
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, correction=0)
        degenerate = std <= self.eps
        log_scale = torch.where(
            degenerate, torch.zeros_like(std), -torch.log(std.clamp_min(self.eps))
        )
        self.log_scale.copy_(log_scale)
        self.bias.copy_(-mean * torch.exp(log_scale))
        self.initialized.fill_(True)
        self._known_initialized = True

    def is_initialized(self) -> bool:
        """Whether the data-dependent initialisation has run (or was loaded)."""
        if not self._known_initialized:
            self._known_initialized = bool(self.initialized)
        return self._known_initialized

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._known_initialized = False

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x)
        if self.training and not self.is_initialized():
            self.initialize(x)
        y = torch.addcmul(self.bias, x, torch.exp(self.log_scale))
        logdet = (x.shape[2] * x.shape[3]) * self.log_scale.sum()
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y)
        x = (y - self.bias) * torch.exp(-self.log_scale)
        logdet = -(y.shape[2] * y.shape[3]) * self.log_scale.sum()
        return x, logdet.expand(y.shape[0])

    def extra_repr(self) -> str:
        return f"{self.num_channels}"
