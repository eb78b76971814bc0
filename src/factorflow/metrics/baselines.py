"""Reenactment baselines, called like a model: `reenact(driver, target) -> frames`.

driver uint8 [T,3,H,W], target uint8 [T',3,H,W] -> uint8 [T,3,H,W]; output frame t pairs driver
frame t with target frame min(t, T'-1).

- copy-target: the target frame, unmoved. What is said is the target's, whose face it is is exact.
- pixel-paste: the driver's own mouth pixels (the generator's mouth mask of the driver, grown a
  little, plus the target's own mouth region), moved and scaled onto the target's mouth and
  Poisson-blended into the target frame. An upper reference for what is said, not for whose mouth
  says it.
- glow-swap: Glow's level swap (`GlowModel.reenact`): finer latents from the driver frame, the top
  latent from the target. Uses the evaluated model's own flow.
- glow-attribute: the Glow paper's attribute vectors. For each mouth factor k, the direction d_k is
  the mean latent (all levels, flattened, centred on its clip's mean) of training frames in the
  factor's top quartile minus the mean in its bottom quartile. A frame is reenacted as
  z_target + sum_k a_k d_k with the a_k that best explain the latent difference z_driver - z_target
  in the span of the directions (least squares). So the amount of each attribute is read from the
  driver frame itself, with no access to its ground-truth factors, and only the attribute
  directions of the target's latent change.
- glow-residual: latent residual transfer, no training beyond the flow: every level of the
  target's clip-mean latent plus the driver frame's change from the driver's clip-mean latent,
  z_t = mean(z_target) + z_driver,t - mean(z_driver).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from factorflow.models.glow import GlowModel
from factorflow.reenact.poisson import poisson_blend

__all__ = [
    "BASELINES",
    "CopyTarget",
    "GlowAttribute",
    "GlowResidual",
    "PixelPaste",
    "target_frames",
]

BASELINES = ("copy-target", "pixel-paste", "glow-swap", "glow-attribute", "glow-residual")


def target_frames(target: Tensor, n: int) -> Tensor:
    """The target frame paired with each of `n` driver frames: target[min(t, T'-1)] -> [n,...]."""
    return target[torch.arange(n).clamp(max=len(target) - 1)]


class CopyTarget:
    name: ClassVar[str] = "copy-target"

    def reenact(self, driver: Tensor, target: Tensor) -> Tensor:
        return target_frames(target, len(driver)).clone()


def _mouth_geometry(masks: Tensor) -> tuple[float, float, float]:
    """(centre y, centre x, mean width) in pixels of a clip's mouth masks [T,H,W]."""
    union = masks.bool().any(0)
    ys, xs = torch.nonzero(union, as_tuple=True)
    if len(ys) == 0:
        raise ValueError("pixel-paste needs a non-empty mouth mask in every clip")
    cols = masks.bool().any(1)  # [T,W]: columns each frame's mouth covers
    widths = [float(c.nonzero().max() - c.nonzero().min() + 1) for c in cols if c.any()]
    return float(ys.float().mean()), float(xs.float().mean()), sum(widths) / len(widths)


def _align(
    frames: Tensor, source: tuple[float, float, float], dest: tuple[float, float, float]
) -> Tensor:
    """Resample frames [T,C,H,W] (any dtype) so the source mouth (centre, width) lands on the
    destination's: a scale about the mouth centre plus a shift. Bilinear for uint8 images,
    nearest for masks (bool)."""
    sy, sx, sw = source
    dy, dx, dw = dest
    t, _, h, w = frames.shape
    scale = sw / dw
    ys = (torch.arange(h, dtype=torch.float32) - dy) * scale + sy
    xs = (torch.arange(w, dtype=torch.float32) - dx) * scale + sx
    gy, gx = torch.meshgrid((ys + 0.5) / h * 2 - 1, (xs + 0.5) / w * 2 - 1, indexing="ij")
    grid = torch.stack([gx, gy], -1).expand(t, h, w, 2)
    is_mask = frames.dtype == torch.bool
    out = F.grid_sample(
        frames.float(),
        grid,
        mode="nearest" if is_mask else "bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return out > 0.5 if is_mask else out.round().clamp(0, 255).to(frames.dtype)


def _grow(mask: Tensor, pixels: int) -> Tensor:
    """bool [H,W] dilated by a (2*pixels+1)^2 square."""
    if pixels <= 0:
        return mask.bool()
    m = mask.float()[None, None]
    return F.max_pool2d(m, 2 * pixels + 1, stride=1, padding=pixels)[0, 0] > 0


class PixelPaste:
    """Driver mouth pixels Poisson-blended onto the target frame (needs both clips' mouth masks).

    The driver frame is first moved and scaled so that its mouth (mask centre, mean mask width
    over the clip) sits on the target's. `grow` is the mask dilation in pixels (default: 1/32 of
    the frame side, at least 1).
    """

    name: ClassVar[str] = "pixel-paste"

    def __init__(self, grow: int | None = None) -> None:
        self.grow = grow

    def reenact(
        self, driver: Tensor, target: Tensor, *, driver_masks: Tensor, target_masks: Tensor
    ) -> Tensor:
        """driver/target uint8 [T,3,H,W]/[T',3,H,W], masks [T,H,W]/[T',H,W] -> uint8 [T,3,H,W]."""
        if driver_masks.shape[0] != len(driver) or target_masks.shape[0] != len(target):
            raise ValueError(
                f"need one mask per frame: driver {len(driver)} frames, {driver_masks.shape[0]} "
                f"masks; target {len(target)} frames, {target_masks.shape[0]} masks"
            )
        h = driver.shape[-2]
        grow = self.grow if self.grow is not None else max(1, round(h / 32))
        src, dst = _mouth_geometry(driver_masks), _mouth_geometry(target_masks)
        moved = _align(driver.cpu(), src, dst)
        moved_masks = _align(driver_masks.cpu().bool()[:, None], src, dst)[:, 0]
        tgt = target_frames(target.cpu(), len(driver))
        # The target's own mouth is replaced too: else its lips would show around a smaller one.
        own = target_frames(target_masks.cpu().bool(), len(driver))
        out = []
        for t in range(len(driver)):
            blended = poisson_blend(
                moved[t].permute(1, 2, 0).numpy(),
                tgt[t].permute(1, 2, 0).numpy(),
                _grow(moved_masks[t] | own[t], grow).numpy(),
            )
            out.append(torch.from_numpy(blended).permute(2, 0, 1))
        return torch.stack(out).to(driver.device)


def _flat(zs: list[Tensor]) -> Tensor:
    return torch.cat([z.flatten(1) for z in zs], 1)


def _unflat(flat: Tensor, like: list[Tensor]) -> list[Tensor]:
    out, start = [], 0
    for z in like:
        n = z[0].numel()
        out.append(flat[:, start : start + n].view(-1, *z.shape[1:]))
        start += n
    return out


class GlowAttribute:
    """Attribute-vector reenactment on a Glow (see the module docstring). directions [K, D]."""

    name: ClassVar[str] = "glow-attribute"

    def __init__(self, glow: GlowModel, directions: Tensor, factor_names: list[str]) -> None:
        self.glow = glow
        self.directions = directions.to(glow.device)
        self.factor_names = factor_names

    @classmethod
    @torch.no_grad()
    def fit(
        cls,
        glow: GlowModel,
        clips: Tensor,
        factors: Tensor,
        factor_names: list[str],
        quantile: float = 0.25,
    ) -> GlowAttribute:
        """Directions from uint8 clips [N,T,3,H,W] labelled per frame with factors [N,T,K].

        Latents are centred on their clip's mean first: identity is constant within a clip, so
        the contrast between top- and bottom-quantile frames is a mouth contrast and not an
        accident of which people happen to fall in each bin. A factor whose quantiles coincide
        (it hardly varies) gets no direction.
        """
        flat = factors.flatten(0, 1).double()
        lo = torch.quantile(flat, quantile, dim=0)
        hi = torch.quantile(flat, 1 - quantile, dim=0)
        usable = hi > lo
        if not usable.any():
            raise ValueError(f"no mouth factor varies in the {len(clips)} clips given")
        low_sum = high_sum = 0.0
        for clip, f in zip(clips, factors.double(), strict=True):
            z = _flat(glow.encode(clip)).double().cpu()
            z = z - z.mean(0, keepdim=True)
            low_sum = low_sum + (f <= lo).double().T @ z
            high_sum = high_sum + (f >= hi).double().T @ z
        low_n = (flat <= lo).sum(0).double()[:, None]
        high_n = (flat >= hi).sum(0).double()[:, None]
        directions = high_sum / high_n - low_sum / low_n
        names = [n for n, u in zip(factor_names, usable.tolist(), strict=True) if u]
        return cls(glow, directions[usable].float(), names)

    @torch.no_grad()
    def reenact(self, driver: Tensor, target: Tensor) -> Tensor:
        zd = self.glow.encode(driver)
        zt = self.glow.encode(target_frames(target, len(driver)))
        base = _flat(zt)
        d = self.directions
        # a = argmin_a |(z_d - z_t) - a D|^2 per frame (pinv: directions may be near-parallel).
        coef = (_flat(zd) - base) @ torch.linalg.pinv(d)
        return self.glow.decode(_unflat(base + coef @ d, zt))


class GlowResidual:
    """Latent residual transfer on a Glow (see the module docstring)."""

    name: ClassVar[str] = "glow-residual"

    def __init__(self, glow: GlowModel) -> None:
        self.glow = glow

    @torch.no_grad()
    def reenact(self, driver: Tensor, target: Tensor) -> Tensor:
        zd, zt = self.glow.encode(driver), self.glow.encode(target)
        return self.glow.decode(
            [
                t.mean(0, keepdim=True) + d - d.mean(0, keepdim=True)
                for d, t in zip(zd, zt, strict=True)
            ]
        )
