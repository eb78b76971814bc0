"""Channel-split coupling layers (additive and affine) with an optional condition input."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from factorflow.flows.base import Bijection

__all__ = ["AdditiveCoupling", "AffineCoupling", "coupling_net", "zero_conv3x3"]


def zero_conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 'same' convolution with zero weight and bias, so a flow starts as the identity."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def coupling_net(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """conv3x3 -> ReLU -> conv1x1 -> ReLU -> zero-initialised conv3x3.

    [B, in_channels, H, W] -> [B, out_channels, H, W].
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, hidden, kernel_size=1),
        nn.ReLU(inplace=True),
        zero_conv3x3(hidden, out_channels),
    )


class _Coupling(Bijection):
    """Splits [B, C, H, W] into ``x_a`` (first ``C // 2`` channels, passed through unchanged) and
    ``x_b`` (the rest), and transforms ``x_b`` elementwise with parameters ``net(x_a [, cond])``.

    With ``cond_channels > 0`` a condition [B, cond_channels, H, W] is concatenated to the net
    input and is required. ``checkpoint=True`` recomputes the net in backward instead of storing
    its activations (training only).
    """

    params_per_channel: int

    def __init__(
        self,
        channels: int,
        hidden: int,
        cond_channels: int = 0,
        checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"coupling needs at least 2 channels to split, got {channels}")
        if hidden < 1 or cond_channels < 0:
            raise ValueError(
                f"coupling needs hidden >= 1 and cond_channels >= 0, got {hidden}, {cond_channels}"
            )
        self.channels = channels
        self.cond_channels = cond_channels
        self.checkpoint = checkpoint
        self.split = channels // 2
        out = self.params_per_channel * (channels - self.split)
        self.net = coupling_net(self.split + cond_channels, hidden, out)

    def _params(self, x_a: Tensor, cond: Tensor | None) -> Tensor:
        if self.cond_channels:
            expected = (x_a.shape[0], self.cond_channels, *x_a.shape[2:])
            if cond is None or tuple(cond.shape) != expected:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"{type(self).__name__} needs cond of shape {expected}, got {got}")
            x_a = torch.cat([x_a, cond], dim=1)
        if self.checkpoint and self.training and torch.is_grad_enabled():
            return _checkpoint(self.net, x_a, use_reentrant=False)
        return self.net(x_a)

    def _halves(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # One split op, whose backward is a single cat; two slices would each scatter their
        # gradient into a zero-filled full-size tensor.
        self._check(x)
        x_a, x_b = x.split([self.split, self.channels - self.split], dim=1)
        return x_a, x_b

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__}({self.channels}) expects [B, {self.channels}, H, W], "
                f"got {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"channels={self.channels}, cond_channels={self.cond_channels}"


class AdditiveCoupling(_Coupling):
    """Volume-preserving coupling ``y_b = x_b + t(x_a)``; logdet 0."""

    params_per_channel = 1

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a, x_b = self._halves(x)
        y = torch.cat([x_a, x_b + self._params(x_a, cond)], dim=1)
        return y, x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y_a, y_b = self._halves(y)
        x = torch.cat([y_a, y_b - self._params(y_a, cond)], dim=1)
        return x, y.new_zeros(y.shape[0])

    def rebuild(self, y: Tensor, cond: Tensor | None = None) -> tuple[list[Tensor], Tensor, Tensor]:
        x_a, y_b = (h.detach() for h in self._halves(y))
        x_a.requires_grad_(True)  # x_a = y_a: the net runs once, on the input it had
        shift = self._params(x_a, cond)
        x_b = (y_b - shift.detach()).requires_grad_(True)
        return [x_a, x_b], torch.cat([x_a, x_b + shift], dim=1), y.new_zeros(y.shape[0])


class AffineCoupling(_Coupling):
    """Affine coupling with a bounded scale (Glow): ``y_b = (x_b + t) * s``,
    ``s = sigmoid(h + 2)`` in (0, 1), ``(t, h) = net(x_a)``; logdet = sum log s.

    The +2 offset starts the scale near 0.88 with a zero-initialised net; bounding ``s`` above by 1
    keeps the inverse from blowing up early in training.
    """

    params_per_channel = 2

    def _shift_logscale(self, x_a: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        shift, h = self._params(x_a, cond).chunk(2, dim=1)
        return shift, nn.functional.logsigmoid(h + 2.0)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a, x_b = self._halves(x)
        shift, log_s = self._shift_logscale(x_a, cond)
        y = torch.cat([x_a, (x_b + shift) * torch.exp(log_s)], dim=1)
        return y, log_s.flatten(1).sum(1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y_a, y_b = self._halves(y)
        shift, log_s = self._shift_logscale(y_a, cond)
        x = torch.cat([y_a, y_b * torch.exp(-log_s) - shift], dim=1)
        return x, -log_s.flatten(1).sum(1)

    def rebuild(self, y: Tensor, cond: Tensor | None = None) -> tuple[list[Tensor], Tensor, Tensor]:
        x_a, y_b = (h.detach() for h in self._halves(y))
        x_a.requires_grad_(True)  # x_a = y_a: the net runs once, on the input it had
        shift, log_s = self._shift_logscale(x_a, cond)
        x_b = (y_b * torch.exp(-log_s.detach()) - shift.detach()).requires_grad_(True)
        out = torch.cat([x_a, (x_b + shift) * torch.exp(log_s)], dim=1)
        return [x_a, x_b], out, log_s.flatten(1).sum(1)
