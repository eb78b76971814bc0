"""2x2 space-to-depth squeeze (Glow/RealNVP channel ordering)."""

from __future__ import annotations

from torch import Tensor

from factorflow.flows.base import Bijection, zero_logdet

__all__ = ["Squeeze", "squeeze2x2", "unsqueeze2x2"]


def squeeze2x2(x: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, 4C, H/2, W/2]; output channel ``4c + 2i + j`` is pixel ``(i, j)`` of
    each 2x2 block of input channel ``c``."""
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs even height and width, got {tuple(x.shape)}")
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze2x2(y: Tensor) -> Tensor:
    """Inverse of :func:`squeeze2x2`: [B, 4C, H, W] -> [B, C, 2H, 2W]."""
    b, c4, h, w = y.shape
    if c4 % 4:
        raise ValueError(f"unsqueeze needs channels divisible by 4, got {tuple(y.shape)}")
    y = y.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(b, c4 // 4, 2 * h, 2 * w)


class Squeeze(Bijection):
    """Space-to-depth bijection [B, C, H, W] -> [B, 4C, H/2, W/2]; a permutation, logdet 0."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if x.dim() != 4:
            raise ValueError(f"Squeeze expects [B, C, H, W], got {tuple(x.shape)}")
        return squeeze2x2(x), zero_logdet(x)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if y.dim() != 4:
            raise ValueError(f"Squeeze expects [B, 4C, H, W], got {tuple(y.shape)}")
        return unsqueeze2x2(y), zero_logdet(y)
