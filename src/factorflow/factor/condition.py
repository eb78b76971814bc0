"""The MI-flow's condition c: the mouth region of the frame through a learned conv pyramid
(METHOD.md section 4).

The mouth region comes from the dataset's known framing: `factorflow prepare` aligns every face so
the mouth centre sits at (0.50, 0.70) of the crop with a width of 0.22, and the synthetic faces put
the mouth inside (0.31, 0.45)-(0.69, 0.88) at any pose and opening. A box in frame fractions
therefore holds the mouth at every image size; its edge is feathered (a linear ramp) so the
condition does not jump when the lips cross the box edge. Everything outside is zeroed.

With `mi.condition=landmarks` the condition is the mouth's geometry instead (`LandmarkCondition`):
the face tool's lip contours normalised by the face (`face.landmarks.mouth_shape`), found from
the frame itself (so training, evaluation and reenactment read it the same way), through a small
MLP whose per-level output is spread over the level's grid. It says how open, wide and round the
mouth is, and nothing of the speaker's skin or lips.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from factorflow.face.landmarks import MOUTH_SHAPE_DIM
from factorflow.factor.config import MIConfig

SHAPE_CACHE = 200_000  # frames whose mouth geometry is kept (66 MB)

__all__ = ["ConditionNet", "LandmarkCondition", "make_condition", "mouth_mask"]


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


class LandmarkCondition(nn.Module):
    """Frames -> per-level condition maps c_l [B, channels, S / 2**(l+1), S / 2**(l+1)] from the
    mouth's geometry (module docstring). The face tool runs once per distinct frame: its
    geometry is kept (328 bytes a frame, at most SHAPE_CACHE frames), so on a corpus that fits,
    epochs after the first cost nothing."""

    def __init__(self, image_size: int, levels: int, channels: int, hidden: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.channels = channels
        self.body = nn.Sequential(
            nn.Linear(MOUTH_SHAPE_DIM, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.heads = nn.ModuleList(nn.Linear(hidden, channels) for _ in range(levels))
        self._shapes: OrderedDict[bytes, Tensor] = OrderedDict()

    def shapes(self, x: Tensor) -> Tensor:
        """x [B, 3, S, S] in [-0.5, 0.5] -> mouth geometry [B, MOUTH_SHAPE_DIM]."""
        from factorflow.face.landmarks import find_landmarks, mouth_shape

        if len(x) == 0:
            return x.new_zeros((0, MOUTH_SHAPE_DIM))
        frames = ((x.detach() + 0.5) * 255).round().clamp(0, 255).byte()
        frames = frames.permute(0, 2, 3, 1).cpu().numpy()
        keys = [f.tobytes() for f in frames]
        todo = [i for i, k in enumerate(keys) if k not in self._shapes]
        if todo:
            found = mouth_shape(find_landmarks(frames[todo], static=True))
            for i, row in zip(todo, found, strict=True):
                self._shapes[keys[i]] = torch.from_numpy(row)
        out = torch.stack([self._shapes[k] for k in keys]).to(x)
        while len(self._shapes) > SHAPE_CACHE:  # the least recently added go first
            self._shapes.popitem(last=False)
        return out

    def mouth(self, x: Tensor) -> Tensor:
        """What the condition looks at, for previews: the frame (its geometry is read from it)."""
        return x

    def forward(self, x: Tensor) -> list[Tensor]:
        h = self.body(self.shapes(x))
        out = []
        for level, head in enumerate(self.heads):
            side = self.image_size // 2 ** (level + 1)
            out.append(head(h)[:, :, None, None].expand(-1, -1, side, side))
        return out


def make_condition(cfg: MIConfig, image_size: int, levels: int) -> nn.Module:
    """The MI-flow's condition network for `mi.condition`."""
    if cfg.condition == "landmarks":
        return LandmarkCondition(image_size, levels, cfg.cond_channels, cfg.cond_hidden)
    return ConditionNet.from_config(cfg, image_size, levels)
