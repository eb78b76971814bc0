"""Reenactment baselines, called like a model: `reenact(driver, target) -> frames`.

driver uint8 [T,3,H,W], target uint8 [T',3,H,W] -> uint8 [T,3,H,W]; output frame t pairs driver
frame t with target frame min(t, T'-1).

- copy-target: the target frame, unmoved. What is said is the target's, whose face it is is exact.
- pixel-paste: the driver's own mouth pixels (the generator's mouth mask of the driver, grown a
  little, plus the target's own mouth region) moved onto the target's mouth position and
  Poisson-blended into the target frame. An upper reference for what is said, not for whose mouth
  says it.
- glow-swap: Glow's level swap (`GlowModel.reenact`): finer latents from the driver frame, the top
  latent from the target. Uses the evaluated model's own flow.
- glow-attribute: the Glow paper's attribute vectors. For each mouth factor k, the direction d_k is
  the mean latent (all levels, flattened) of training frames in the factor's top quartile minus the
  mean in its bottom quartile. A frame is reenacted as z_target + sum_k a_k d_k with the a_k that
  best explain the latent difference z_driver - z_target in the span of the directions (least
  squares). So the amount of each attribute is read from the driver frame itself, with no access to
  its ground-truth factors, and only the attribute directions of the target's latent change.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from factorflow.config import Config
from factorflow.models.base import FlowModel
from factorflow.models.glow import GlowModel
from factorflow.reenact.poisson import poisson_blend

BASELINES = ("copy-target", "pixel-paste", "glow-swap", "glow-attribute")


def target_frames(target: Tensor, n: int) -> Tensor:
    """The target frame paired with each of `n` driver frames: target[min(t, T'-1)] -> [n,...]."""
    return target[torch.arange(n).clamp(max=len(target) - 1)]


class CopyTarget:
    name: ClassVar[str] = "copy-target"

    def reenact(self, driver: Tensor, target: Tensor) -> Tensor:
        return target_frames(target, len(driver)).clone()


def _centroid(masks: Tensor) -> np.ndarray:
    ys, xs = torch.nonzero(masks.bool().any(0), as_tuple=True)
    if len(ys) == 0:
        raise ValueError("pixel-paste needs a non-empty mouth mask in every clip")
    return np.array([ys.float().mean().item(), xs.float().mean().item()])


def _grow(mask: Tensor, pixels: int) -> Tensor:
    """bool [H,W] dilated by a (2*pixels+1)^2 square."""
    if pixels <= 0:
        return mask.bool()
    m = mask.float()[None, None]
    return F.max_pool2d(m, 2 * pixels + 1, stride=1, padding=pixels)[0, 0] > 0


class PixelPaste:
    """Driver mouth pixels Poisson-blended onto the target frame (needs both clips' mouth masks).

    `grow` is the mask dilation in pixels (default: 1/32 of the frame side, at least 1).
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
        h, w = driver.shape[-2:]
        grow = self.grow if self.grow is not None else max(1, round(h / 32))
        dy, dx = np.rint(_centroid(target_masks) - _centroid(driver_masks)).astype(int)
        tgt = target_frames(target, len(driver))
        tgt_masks = target_frames(target_masks, len(driver)).bool()
        # The target's own mouth, in driver coordinates, is replaced too: else its lips would
        # show around a smaller pasted mouth.
        own = torch.roll(tgt_masks, (-int(dy), -int(dx)), (1, 2))
        out = []
        for t in range(len(driver)):
            region = _grow(driver_masks[t].bool() | own[t], grow)
            blended = poisson_blend(
                driver[t].permute(1, 2, 0).cpu().numpy(),
                tgt[t].permute(1, 2, 0).cpu().numpy(),
                region.cpu().numpy(),
                offset=(int(dy), int(dx)),
            )
            out.append(torch.from_numpy(blended).permute(2, 0, 1))
        return torch.stack(out).to(driver.device)


def glow_view(model: FlowModel, config: Config) -> GlowModel | None:
    """A `GlowModel` running `model`'s own flow (for glow-swap and glow-attribute).

    The model itself when it is a Glow; None when its flow needs a condition (MI-flow), which a
    plain Glow cannot supply.
    """
    if isinstance(model, GlowModel):
        return model
    flow = getattr(model, "flow", None)
    if flow is None or flow.config.cond_channels > 0:
        return None
    view = GlowModel(replace(config, model="glow", flow=flow.config))
    view.flow = flow
    return view.eval()


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
        frames: Tensor,
        factors: Tensor,
        factor_names: list[str],
        quantile: float = 0.25,
        batch_size: int = 64,
    ) -> GlowAttribute:
        """Directions from uint8 frames [N,3,H,W] labelled with factors [N,K].

        A factor whose bottom and top quantiles coincide (it hardly varies) gets no direction.
        """
        factors = factors.double()
        lo = torch.quantile(factors, quantile, dim=0)
        hi = torch.quantile(factors, 1 - quantile, dim=0)
        usable = hi > lo
        if not usable.any():
            raise ValueError(f"no mouth factor varies in the {len(frames)} frames given")
        low_sum = high_sum = None
        low_n = (factors <= lo).sum(0).double()
        high_n = (factors >= hi).sum(0).double()
        for i in range(0, len(frames), batch_size):
            z = _flat(glow.encode(frames[i : i + batch_size])).double().cpu()
            f = factors[i : i + batch_size]
            lows, highs = (f <= lo).double().T @ z, (f >= hi).double().T @ z
            low_sum = lows if low_sum is None else low_sum + lows
            high_sum = highs if high_sum is None else high_sum + highs
        directions = high_sum / high_n[:, None] - low_sum / low_n[:, None]
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
