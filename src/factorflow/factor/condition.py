"""The MI-flow's condition c: the mouth region of the frame through a learned conv pyramid
(METHOD.md section 4).

The mouth region comes from the dataset's known framing: `factorflow prepare` aligns every face so
the mouth centre sits at (0.50, 0.70) of the crop with a width of 0.22, and the synthetic faces put
the mouth inside (0.31, 0.45)-(0.69, 0.88) at any pose and opening. A box in frame fractions
therefore holds the mouth at every image size; its edge is feathered (a linear ramp) so the
condition does not jump when the lips cross the box edge. Everything outside is zeroed.

Batches carry frames only, no landmarks, so the box is the only mouth locator (`mi.mouth_region`
accepts "framing").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from factorflow.factor.config import MIConfig


def mouth_mask(
    size: int, box: tuple[float, float, float, float], feather: float, dtype=torch.float32
) -> Tensor:
    """Soft mask [1, 1, size, size] in [0, 1]: 1 inside the box (x0, y0, x1, y1) given as fractions
    of the side, 0 outside, with linear ramps `feather` (a fraction of the side) wide centred on
    the box edges; feather 0 gives a hard box at pixel-centre resolution."""
    x0, y0, x1, y1 = box
    centres = (torch.arange(size, dtype=dtype) + 0.5) / size

    def ramp(lo: float, hi: float) -> Tensor:
        if feather == 0:
            return ((centres >= lo) & (centres <= hi)).to(dtype)
        rise = ((centres - lo) / feather + 0.5).clamp(0, 1)
        fall = ((hi - centres) / feather + 0.5).clamp(0, 1)
        return rise * fall

    return (ramp(y0, y1)[:, None] * ramp(x0, x1)[None, :])[None, None]


class ConditionNet(nn.Module):
    """Frames -> per-level condition maps c_l [B, channels, S / 2**(l+1), S / 2**(l+1)].

    Input: the image in [-0.5, 0.5] times the mouth mask, and the mask itself as a fourth channel
    (convolutions cannot otherwise tell where the box is). A stem conv, then per level a stride-2
    conv (the pyramid) and a 3x3 head that reads the level's condition out, so c_l has the size of
    z_l and of level l after its squeeze.
    """

    def __init__(
        self,
        image_size: int,
        levels: int,
        channels: int,
        hidden: int,
        box: tuple[float, float, float, float],
        feather: float,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if image_size % 2**levels:
            raise ValueError(f"image size {image_size} is not divisible by 2**levels = {2**levels}")
        self.image_size = image_size
        # Derived from the config, so not saved: a checkpoint's mask follows its config.
        self.register_buffer("mask", mouth_mask(image_size, box, feather), persistent=False)
        self.stem = nn.Conv2d(in_channels + 1, hidden, 3, padding=1)
        self.down = nn.ModuleList(
            nn.Conv2d(hidden, hidden, 3, stride=2, padding=1) for _ in range(levels)
        )
        self.heads = nn.ModuleList(nn.Conv2d(hidden, channels, 3, padding=1) for _ in range(levels))

    @classmethod
    def from_config(cls, cfg: MIConfig, image_size: int, levels: int) -> ConditionNet:
        return cls(
            image_size, levels, cfg.cond_channels, cfg.cond_hidden, cfg.mouth_box, cfg.mouth_feather
        )

    def mouth(self, x: Tensor) -> Tensor:
        """x [B, C, S, S] in [-0.5, 0.5] -> the mouth region [B, C, S, S] (zero outside the box)."""
        return x * self.mask.to(x.dtype)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x [B, C, S, S] in [-0.5, 0.5] -> [c_0, ..., c_{L-1}], finest first."""
        if x.dim() != 4 or x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"condition net expects images [B, C, {self.image_size}, {self.image_size}], "
                f"got {tuple(x.shape)}"
            )
        mask = self.mask.to(x.dtype).expand(x.shape[0], 1, -1, -1)
        h = F.relu(self.stem(torch.cat([x * mask, mask], 1)))
        out = []
        for down, head in zip(self.down, self.heads, strict=True):
            h = F.relu(down(h))
            out.append(head(h))
        return out
