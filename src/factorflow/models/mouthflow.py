"""The mouth flow: a conditional Glow on a landmark-aligned lower-face crop.

x is an S x S crop about the mouth (rotated upright, `face.render.CROP_SIDE_IOD` inter-ocular
distances wide; S is the flow's `image_size`); the condition is identity-free geometry plus the
warped appearance:

    cond = (the crop warped by the landmark warp to the wanted mouth shape, its mouth interior
            blanked; the wanted inner-lip mask)

A small conv net turns the condition into per-level features that every coupling net reads.
Reenactment encodes the target's crop under its own geometry (its crop, its inner-lip mask) to
its deviations from the conditional prior, then decodes them under the driver's geometry (the
warped crop, the new inner-lip mask): the deviations hold what the geometry does not say (the
target's teeth, the shade of its mouth), the condition says where the mouth is open. Training
uses pairs of frames (i, j) of one clip (`data.pairs`): maximum likelihood of x_j under its
condition, plus the reconstruction of x_j from x_i decoded under j's geometry. The frames and the
face tool's landmarks give the answer; no generator factor is used.

At use time the model paints the mouth interior of `face.render.MouthRenderer`, which warps the
lips and chin at the frame's own resolution (registry pipeline "mouth-paste"): the streamed video
path is `reenact.mouthreenact`, and `reenact` here runs the same renderer on model-sized clips
(the benchmark's 64 px frames, upscaled for the face tool and brought back).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from factorflow.config import Config
from factorflow.flows import Glow
from factorflow.flows.likelihood import bits_per_dim, check_finite
from factorflow.models.base import Batch, BatchRandom, FlowModel

__all__ = [
    "IMAGES",
    "INTERIOR",
    "MASKS",
    "SPREAD",
    "CondNet",
    "FaceClip",
    "MouthFlowModel",
    "augment",
    "blank",
    "crop_stats",
    "denormalise",
    "normalise",
]

INTERIOR = -0.45  # the (normalised) value that fills the new mouth interior of the warped crop
SPREAD = 0.15  # a normalised crop: per-channel mean 0, standard deviation SPREAD
IMAGES = ("own", "warped", "target")
MASKS = ("own_mask", "new_mask")


def crop_stats(own: Tensor, own_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel colour of the target's own face about the mouth and the spread of
    its crop. The mean comes from the crop's central window (rows 1/8-7/8, columns 1/4-3/4)
    without the mouth interior: the crop's edges may be background (a turned head, a coloured
    wall) and the interior comes and goes with the mouth; neither should set the face's colour.
    The spread is the whole crop's, so that a dark mouth interior stays inside the range."""
    size = own.shape[-1]
    window = torch.zeros_like(own_mask)
    window[..., size // 8 : size - size // 8, size // 4 : size - size // 4] = 1
    weight = window * (1 - own_mask)
    mean = (own * weight).sum((2, 3), keepdim=True) / weight.sum((2, 3), keepdim=True).clamp_min(1)
    return mean, own.std((2, 3), keepdim=True).clamp_min(0.02)


def normalise(x: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
    """Colour-normalise by the target's own crop: the flow sees every face in one colour range."""
    mean, std = stats
    return ((x - mean) / std * SPREAD).clamp(-0.5, 0.5)


def denormalise(x: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
    mean, std = stats
    return (x / SPREAD * std + mean).clamp(-0.5, 0.5)


def blank(image: Tensor, mask: Tensor) -> Tensor:
    """The crop with its (new) mouth interior filled dark: the flow paints it from there."""
    return image * (1 - mask) + INTERIOR * mask


class CondNet(nn.Module):
    """(warped crop [B,3,S,S], mask [B,1,S,S]) -> per-level features [B, C, S/2^(l+1), ...]."""

    def __init__(self, levels: int, channels: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(4, channels, 3, padding=1), nn.ReLU())
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU())
            for _ in range(levels)
        )

    def forward(self, image: Tensor, mask: Tensor) -> list[Tensor]:
        h = self.stem(torch.cat([image, mask - 0.5], 1))
        out = []
        for down in self.down:
            h = down(h)
            out.append(h)
        return out


def augment(batch: Batch, rand: BatchRandom) -> Batch:
    """The same random flip, colour change, scale and small rotation for every image of a pair
    (images in [-0.5, 0.5], masks 0/1)."""
    b = batch["own"].shape[0]
    flip = rand.rand((b,)) < 0.5
    angle = (rand.rand((b,)) - 0.5) * 2 * np.deg2rad(8)
    scale = 1 + (rand.rand((b,)) - 0.5) * 0.2
    shift = (rand.rand((b, 2)) - 0.5) * 0.08
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    sign = torch.where(flip, -1.0, 1.0)
    theta = torch.stack(
        [
            torch.stack([cos * sign, -sin, shift[:, 0]], 1),
            torch.stack([sin * sign, cos, shift[:, 1]], 1),
        ],
        1,
    ).to(batch["own"])
    grid = F.affine_grid(theta, list(batch["own"].shape), align_corners=False)
    gain = (1 + (rand.rand((b, 3, 1, 1)) - 0.5) * 0.3).to(batch["own"])
    bias = ((rand.rand((b, 3, 1, 1)) - 0.5) * 0.1).to(batch["own"])
    out = dict(batch)
    for k in IMAGES:
        moved = F.grid_sample(batch[k] + 0.5, grid, padding_mode="border", align_corners=False)
        out[k] = (moved * gain + bias).clamp(0, 1) - 0.5
    for k in MASKS:
        out[k] = (F.grid_sample(batch[k], grid, align_corners=False) > 0.5).to(batch[k])
    return out


@dataclass
class FaceClip:
    """A model-sized clip at the face tool's working size, with its landmarks there."""

    frames: np.ndarray  # uint8 [T, H, W, 3], as given
    big: np.ndarray  # uint8 [T, kH, kW, 3]
    landmarks: np.ndarray  # [T, 478, 2] in `big`'s pixels (NaN: no face)


class MouthFlowModel(FlowModel):
    name = "mouthflow"
    val_metric = "rec"

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.settings = config.mouthflow
        self.n_bits = config.flow.n_bits
        self.flow = Glow(
            dataclasses.replace(
                config.flow, cond_channels=self.settings.cond_channels, coupling_cond=True
            )
        )
        self.cond_net = CondNet(config.flow.levels, self.settings.cond_channels)
        self.temperature = self.settings.temperature

    @property
    def crop_size(self) -> int:
        return self.flow.config.image_size

    @property
    def frame_size(self) -> None:
        return None  # any: the face tool finds the mouth

    @property
    def loss_weights(self) -> dict[str, float]:
        return {"bpd": 1.0, "rec": self.settings.rec_weight}

    def data_options(self) -> dict[str, Any]:
        return {"pairs": (self.crop_size, self.settings.partners)}

    # -- training ------------------------------------------------------------------------
    def _unit(self, batch: Batch) -> Batch:
        out = dict(batch)
        for k in IMAGES:
            out[k] = batch[k].to(self.device).float() / 255.0 - 0.5
        for k in MASKS:
            out[k] = batch[k].to(self.device).float()
        return out

    def condition(self, warped: Tensor, mask: Tensor) -> list[Tensor]:
        return self.cond_net(blank(warped, mask), mask)

    def _normalised(self, batch: Batch) -> Batch:
        stats = crop_stats(batch["own"], batch["own_mask"])
        return {**batch, **{k: normalise(batch[k], stats) for k in IMAGES}}

    def initialize(self, batch: Batch) -> None:
        b = self._normalised(self._unit(batch))
        self.flow.initialize(b["target"], self.condition(b["warped"], b["new_mask"]))

    def losses(self, batch: Batch, rand: BatchRandom) -> dict[str, Tensor]:
        """batch (`data.pairs`): own, warped, target uint8 [B,3,S,S]; own_mask, new_mask uint8
        [B,1,S,S]. -> bpd of the target under its condition, and the L1 reconstruction of the
        target decoded from the own crop under the new geometry (weighted in the new mouth)."""
        b = self._unit(batch)
        if self.settings.augment and self.training:
            b = augment(b, rand)
        b = self._normalised(b)
        target = b["target"]
        bins = 2.0**self.n_bits
        quant = torch.floor((target + 0.5) * bins).clamp(0, bins - 1) / bins - 0.5
        noise = rand.rand(tuple(target.shape)).to(target) / bins
        cond_new = self.condition(b["warped"], b["new_mask"])
        bpd = bits_per_dim(
            self.flow.log_prob(quant + noise, cond_new), target[0].numel(), self.n_bits
        )
        zs = self.flow.encode(b["own"], self.condition(b["own"], b["own_mask"])).zs
        decoded, _ = self.flow.inverse(zs, cond_new)
        weight = 1.0 + self.settings.mouth_weight * F.max_pool2d(b["new_mask"], 5, 1, 2)
        rec = ((decoded - target).abs() * weight).mean((1, 2, 3))
        return {"bpd": bpd, "rec": rec}

    @torch.no_grad()
    def previews(self, batch: Batch) -> dict[str, Tensor]:
        """[4, n, 3, S, S]: own crop, warped crop, the painted result, the true partner frame."""
        part = {k: batch[k][:8].cpu() for k in (*IMAGES, *MASKS)}
        hwc = {k: part[k].permute(0, 2, 3, 1).numpy() for k in IMAGES}
        masks = {k: part[k][:, 0].numpy() for k in MASKS}
        painted = self.painter()(hwc["own"], masks["own_mask"], hwc["warped"], masks["new_mask"])
        rows = [part["own"], part["warped"], torch.from_numpy(painted).permute(0, 3, 1, 2)]
        return {"pairs": torch.stack([*rows, part["target"]])}

    # -- painting ------------------------------------------------------------------------
    def painter(self):
        """A `face.render.Painter` over uint8 crop batches [B,S,S,...]. The encoding of a crop
        seen before (a still target: every frame) is reused, so only the decode runs per frame."""
        cache: dict[bytes, tuple[list[Tensor], tuple[Tensor, Tensor]]] = {}

        @torch.inference_mode()
        def run(own, own_mask, warped, new_mask):
            img = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).to(self.device) / 255.0 - 0.5  # noqa: E731
            msk = lambda a: torch.from_numpy(a).to(self.device).float()[:, None]  # noqa: E731
            keys = [own[i].tobytes() + own_mask[i].tobytes() for i in range(len(own))]
            todo = [i for i, k in enumerate(keys) if k not in cache]
            if todo:
                x = img(own[todo])
                stats = crop_stats(x, msk(own_mask[todo]))
                x = normalise(x, stats)
                eps = self.flow.standardize(x, self.condition(x, msk(own_mask[todo])))
                if len(cache) > 256:
                    cache.clear()
                for n, i in enumerate(todo):
                    cache[keys[i]] = (
                        [e[n : n + 1] for e in eps],
                        (stats[0][n : n + 1], stats[1][n : n + 1]),
                    )
            eps = [
                torch.cat([cache[k][0][lv] for k in keys]) for lv in range(len(self.flow.levels))
            ]
            stats = tuple(torch.cat([cache[k][1][i] for k in keys]) for i in range(2))
            cond = self.condition(normalise(img(warped), stats), msk(new_mask))
            decoded = self.flow.destandardize(eps, cond, self.temperature)
            check_finite(decoded)
            out = denormalise(decoded.clamp(-0.5, 0.5), stats)
            return ((out + 0.5) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()

        return run

    # -- the FlowModel seam: model-sized clips -----------------------------------------------
    def _face_clip(self, frames: Tensor) -> FaceClip:
        from factorflow.face.landmarks import track_landmarks, upscale

        array = frames.permute(0, 2, 3, 1).cpu().numpy()
        big, _ = upscale(array)
        landmarks, _ = track_landmarks(big, static=len(big) == 1)
        return FaceClip(array, big, landmarks)

    def identity(self, target: Tensor) -> FaceClip:
        """uint8 [T,3,H,W] -> the target clip at the face tool's size, with its landmarks."""
        return self._face_clip(target)

    def motion(self, driver: Tensor) -> FaceClip:
        return self._face_clip(driver)

    @torch.no_grad()
    def render(self, identity: FaceClip, motion: FaceClip) -> Tensor:
        """The target's frames (looped) with the driver's mouth motion -> uint8 [T_driver,3,H,W].
        Frames where either has no face are the target's, untouched."""
        import cv2

        from factorflow.face.landmarks import found
        from factorflow.face.motion import Geometry, driver_motion
        from factorflow.face.render import MouthRenderer

        n, small = len(motion.frames), identity.frames
        out = np.stack([small[t % len(small)] for t in range(n)])
        t_found, d_found = found(identity.landmarks), found(motion.landmarks)
        if not t_found.any() or not d_found.any():
            return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
        t_geo, d_geo = Geometry.of(identity.landmarks), Geometry.of(motion.landmarks)
        moves = driver_motion(d_geo, t_geo)
        renderer = MouthRenderer(t_geo.neutral, self.painter(), self.crop_size)
        live = [t for t in range(n) if moves.driver_found[t] and t_found[t % len(small)]]
        items = [
            (
                identity.big[t % len(small)],
                identity.landmarks[t % len(small)],
                t_geo.to_canonical[t % len(small)],
                moves.delta[t],
            )
            for t in live
        ]
        height, width = small.shape[1:3]
        for t, r in zip(live, renderer.render_many(items), strict=True):
            y0, x0, y1, x1 = r.box
            changed = np.zeros(r.frame.shape[:2], np.float32)
            changed[y0:y1, x0:x1] = r.mask
            alpha = cv2.resize(changed, (width, height), interpolation=cv2.INTER_AREA)[..., None]
            down = cv2.resize(r.frame, (width, height), interpolation=cv2.INTER_AREA)
            out[t] = np.clip(out[t] * (1 - alpha) + down * alpha + 0.5, 0, 255).astype(np.uint8)
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def reenact(self, driver: Tensor, target: Tensor, batch_size: int = 64) -> Tensor:
        return self.render(self.identity(target), self.motion(driver)).to(driver.device)

    def factorize(self, frames: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        raise NotImplementedError(
            "the mouth flow has no latent split of a whole frame to probe: its latents are of a "
            "mouth crop given the landmark geometry"
        )

    def bits_per_dim(self, frames: Tensor, rand: BatchRandom | None = None) -> Tensor:
        raise NotImplementedError(
            "the mouth flow's likelihood is of a mouth crop given its geometry, not of a frame"
        )

    def roundtrip_error(self, frames: Tensor) -> tuple[float, int]:
        raise NotImplementedError("the mouth flow encodes mouth crops, not frames")
