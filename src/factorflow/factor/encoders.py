"""Attribute encoders E_l: r = E_l(z_l), s = z_l - r, so z = s + r holds exactly (METHOD.md 3).

All encoders map a level's latent [N,C,H,W] to a tensor of the same shape and start as the zero map
(r = 0, s = z), so stage 2 starts from "everything is structure" and the losses pull motion into r.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ENCODERS", "AttentionEncoder", "ConvEncoder", "LinearEncoder", "build_encoders"]


class LinearEncoder(nn.Module):
    """The thesis encoder: one linear map over the spatial grid, shared across channels."""

    def __init__(self, channels: int, height: int, width: int, hidden: int = 0) -> None:
        super().__init__()
        del channels, hidden
        n = height * width
        self.weight = nn.Parameter(torch.zeros(n, n))
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, z: Tensor) -> Tensor:
        b, c, h, w = z.shape
        return (z.reshape(b, c, h * w) @ self.weight.T + self.bias).reshape(b, c, h, w)


class ConvEncoder(nn.Module):
    """A small residual-free conv net: 3x3 -> ReLU -> 3x3 -> ReLU -> zero-initialised 3x3."""

    def __init__(self, channels: int, height: int, width: int, hidden: int = 64) -> None:
        super().__init__()
        del height, width
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class AttentionEncoder(nn.Module):
    """Conv features plus one self-attention layer over grid positions (global context), then a
    zero-initialised projection. Lets r at the mouth depend on the whole face, e.g. on its scale."""

    def __init__(self, channels: int, height: int, width: int, hidden: int = 64) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU())
        self.pos = nn.Parameter(torch.zeros(1, height * width, hidden))
        heads = 4 if hidden % 4 == 0 else 1
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Conv2d(hidden, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z: Tensor) -> Tensor:
        b, _, h, w = z.shape
        f = self.inp(z)
        seq = f.flatten(2).transpose(1, 2) + self.pos
        q = self.norm(seq)
        seq = seq + self.attn(q, q, q, need_weights=False)[0]
        f = seq.transpose(1, 2).reshape(b, -1, h, w)
        return self.out(f)


ENCODERS: dict[str, type[nn.Module]] = {
    "linear": LinearEncoder,
    "conv": ConvEncoder,
    "attention": AttentionEncoder,
}


def build_encoders(kind: str, shapes: list[tuple[int, int, int]], hidden: int) -> nn.ModuleList:
    """One encoder per level, for latent shapes [(C,H,W), ...] finest first."""
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder {kind!r}: choose one of {sorted(ENCODERS)}")
    return nn.ModuleList(ENCODERS[kind](c, h, w, hidden) for c, h, w in shapes)
