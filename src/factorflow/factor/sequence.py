"""Sequential word classifier over per-frame features of r (loss 4 of METHOD.md section 3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["FrameFeatures", "SequenceClassifier"]


class FrameFeatures(nn.Module):
    """Per-frame features of the relevant latents r_{1..L,t}: a conv per level (signed latents
    would cancel under plain pooling), pooled to a small grid, then one linear map."""

    def __init__(
        self, shapes: list[tuple[int, int, int]], dim: int, grid: int = 4, width: int = 16
    ) -> None:
        super().__init__()
        self.grid = grid
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.ReLU()) for c, _, _ in shapes
        )
        size = sum(width * min(h, grid) * min(w, grid) for _, h, w in shapes)
        self.proj = nn.Sequential(nn.Linear(size, dim), nn.ReLU())

    def forward(self, rs: list[Tensor]) -> Tensor:
        """rs[l]: [N,C,H,W] -> [N, dim]."""
        parts = [
            F.adaptive_avg_pool2d(conv(r), (min(r.shape[2], self.grid), min(r.shape[3], self.grid)))
            for conv, r in zip(self.convs, rs, strict=True)
        ]
        return self.proj(torch.cat([p.flatten(1) for p in parts], 1))


class SequenceClassifier(nn.Module):
    """[B,T,dim] per-frame features -> [B, num_words] logits, by a BiGRU or a temporal conv."""

    def __init__(self, dim: int, num_words: int, kind: str = "bigru") -> None:
        super().__init__()
        self.kind = kind
        if kind == "bigru":
            self.seq = nn.GRU(dim, dim, batch_first=True, bidirectional=True)
            out = 2 * dim
        elif kind == "tcn":
            self.seq = nn.Sequential(
                nn.Conv1d(dim, dim, 3, padding=1),
                nn.ReLU(),
                nn.Conv1d(dim, dim, 3, padding=2, dilation=2),
                nn.ReLU(),
            )
            out = dim
        else:
            raise ValueError(f"unknown sequence model {kind!r}: choose bigru or tcn")
        self.head = nn.Linear(out, num_words)

    def forward(self, feats: Tensor) -> Tensor:
        if self.kind == "bigru":
            h, _ = self.seq(feats)
        else:
            h = self.seq(feats.transpose(1, 2)).transpose(1, 2)
        return self.head(h.mean(1))
