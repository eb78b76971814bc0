"""MI-flow (METHOD.md section 4): a Glow whose split priors read a condition c made from the mouth
region of the frame, trained with three information terms.

The condition is computed from the bin centre of each frame, a function of the discrete image, so
p(x | c) is a proper density of the dequantised frame given c and its bits/dim a conditional
likelihood. It is not a like-for-like comparison with an unconditional Glow's bits/dim: c is read
off the frame itself.

Terms per frame ([B]; `loss_weights` weights them):
- bpd: domain mapping, the flow's likelihood with the conditional priors;
- relevance: -sum_{l<L} log p(z_l | h_l, c_l) in bits per image dimension, weight beta, so the
  conditional prior counts 1 + beta times in all (the thesis's Barber-Agakov term for
  I(z_1..L-1; c)). Without the entropy of z it is no bound: the flow gains by shrinking
  z_1..L-1, so beta defaults to 0 and the term is only logged;
- infonce: minus the InfoNCE bound on I(z_1..L-1; c) with a separable critic (weight w_infonce);
- club: CLUB upper bound on I(z_L; c), minimised through the flow only (z_L), on a detached,
  standardised view of c, with q's variance bounded. CLUB is linear in q's mean, so it has no
  floor against a moving encoder: with c free to rescale and q's log-variance down to -10 the
  "bound" reached -2.6e6 and a 64x64 run diverged within 80 steps;
- club_q: -log q(c | z_L) per condition dimension on detached inputs: fits CLUB's q and nothing
  else (weight 1; per dimension so its gradients do not take the global gradient-clip budget);
- resample: MSE between the frame and the decode of (z_L of the frame, z_1..L-1 drawn from their
  conditional priors given c at `resample_temperature`): (z_L, c) must determine the image.
The split of the club terms keeps the two objectives from fighting: q maximises its likelihood,
the flow and condition minimise the bound, and neither term's gradient reaches the other's side.

Reenactment: z_L from the target (mean over its frames), z_1..L-1 from the driver (or, with
`mi.fine_latents=prior`, their conditional prior mean given the driver's condition).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import Tensor, nn

from factorflow.config import Config
from factorflow.factor.condition import make_condition
from factorflow.factor.mi import MIObjective
from factorflow.flows import Glow, GlowConfig
from factorflow.flows.glow import GlowEncoding
from factorflow.flows.likelihood import bits_per_dim, dequantize, postprocess
from factorflow.models.base import (
    Batch,
    BatchRandom,
    FlowModel,
    flatten_levels,
    unflatten_levels,
)

__all__ = [
    "Conditioned",
    "MIModel",
    "Motion",
    "conditional_bits_per_dim",
    "encode_conditioned",
    "mi_flow_config",
]


def mi_flow_config(config: Config) -> GlowConfig:
    """The run's Glow with the MI-flow's condition: conditional split priors, a free top prior."""
    mi = config.mi
    return dataclasses.replace(
        config.flow,
        cond_channels=mi.cond_channels,
        prior_cond=mi.prior_cond,
        coupling_cond=mi.coupling_cond,
        top_cond=False,
    )


class Conditioned(NamedTuple):
    """A batch of frames through the MI-flow.

    centre: bin-centre image [B,3,H,W] in [-0.5, 0.5]; cond: c_0..c_{L-1}, c_l
    [B, cond_channels, H_l, W_l]; encoding: the flow's latents, logdet and kept halves.
    """

    centre: Tensor
    cond: list[Tensor]
    encoding: GlowEncoding


def encode_conditioned(
    flow: Glow, condition: nn.Module, frames: Tensor, n_bits: int, rand: BatchRandom | None
) -> Conditioned:
    """uint8 frames [B,3,H,W] -> condition and latents; `rand` draws dequantisation noise (None:
    bin centres). The condition always reads the bin centre."""
    centre = dequantize(frames, n_bits, None)
    x = centre if rand is None else dequantize(frames, n_bits, rand)
    cond = condition(centre)
    return Conditioned(centre, cond, flow.encode(x, cond))


def conditional_bits_per_dim(
    flow: Glow, condition: nn.Module, frames: Tensor, n_bits: int, rand: BatchRandom | None
) -> Tensor:
    """Bits/dim [B] of uint8 frames [B,3,H,W] given their condition (see the module docstring)."""
    centre, cond, (zs, logdet, kept) = encode_conditioned(flow, condition, frames, n_bits, rand)
    log_prob = logdet + sum(flow.prior_log_prob(zs, cond, kept))
    return bits_per_dim(log_prob, centre[0].numel(), n_bits)


class Motion(NamedTuple):
    """What reenactment takes from the driver: latents [T,...] per level (z_1..L-1 for the MI-flow,
    r_1..L for the hybrid) and the driver's condition, which decoding needs when the flow reads it.
    """

    latents: list[Tensor]
    cond: list[Tensor]


class MIModel(FlowModel):
    name = "mi"

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.cfg = config.mi
        self.n_bits = config.flow.n_bits
        flow_config = mi_flow_config(config)
        self.flow = Glow(flow_config)
        self.condition = make_condition(self.cfg, flow_config.image_size, flow_config.levels)
        self.objective = MIObjective(self.cfg, flow_config)

    @property
    def loss_weights(self) -> dict[str, float]:
        return self.objective.weights

    def _encode(self, frames: Tensor, rand: BatchRandom | None = None) -> Conditioned:
        return encode_conditioned(
            self.flow, self.condition, frames.to(self.device), self.n_bits, rand
        )

    def initialize(self, batch: Batch) -> None:
        frames = batch["image"].to(self.device)
        centre = dequantize(frames, self.n_bits, None)
        with torch.no_grad():
            self.flow.initialize(centre, self.condition(centre))

    def losses(self, batch: Batch, rand: BatchRandom) -> dict[str, Tensor]:
        centre, cond, encoding = self._encode(batch["image"], rand)
        return self.objective(self.flow, cond, encoding, centre, rand.generator)

    @torch.no_grad()
    def bits_per_dim(self, frames: Tensor, rand: BatchRandom | None = None) -> Tensor:
        return conditional_bits_per_dim(
            self.flow, self.condition, frames.to(self.device), self.n_bits, rand
        )

    def flow_condition(self, x: Tensor) -> list[Tensor]:
        return self.condition(x)

    # -- reenactment -----------------------------------------------------------------------
    @torch.no_grad()
    def factorize(self, frames: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """uint8 [T,3,H,W] -> (s, r) per frame: s = [z_L] (identity), r = z_1..L-1 (motion)."""
        zs = self._encode(frames).encoding.zs
        return zs[-1:], zs[:-1]

    def identity(self, target: Tensor) -> Tensor:
        """Target frames [T,3,H,W] -> their mean top latent [1, *latent_shapes[-1]]."""
        return self.factorize(target)[0][0].mean(0, keepdim=True)

    @torch.no_grad()
    def motion(self, driver: Tensor) -> Motion:
        _, cond, encoding = self._encode(driver)
        return Motion(encoding.zs[:-1], cond)

    @torch.no_grad()
    def render(self, identity: Tensor, motion: Motion) -> Tensor:
        n = motion.cond[0].shape[0]
        top = identity.expand(n, *identity.shape[1:])
        if self.cfg.fine_latents == "prior":
            given = [None] * len(motion.latents) + [top]
            zs = self.flow.sample_latents(n, 0.0, motion.cond, given)
        else:
            zs = [*motion.latents, top]
        return self.decode(zs, motion.cond)

    @torch.no_grad()
    def previews(self, batch: Batch) -> dict[str, Tensor]:
        """Grids as [rows, cols, 3, H, W]: the frames over the mouth region the condition sees,
        over their exact decode, over the resampled decode; and driver / target / reenactment."""
        frames = batch["image"][:8].to(self.device)
        centre, cond, (zs, _, _) = self._encode(frames)
        given = [None] * (len(zs) - 1) + [zs[-1]]
        redrawn = self.flow.sample_latents(len(frames), self.cfg.resample_temperature, cond, given)
        mouth = postprocess(self.condition.mouth(centre), self.n_bits)
        out = {
            "mouth_region": torch.stack([frames, mouth]),
            "reconstructions": torch.stack([frames, self.decode(zs, cond)]),
            "resample": torch.stack([frames, self.decode(redrawn, cond)]),
        }
        half = len(frames) // 2
        if half:
            driver, target = frames[:half], frames[half : 2 * half]
            rendered = self.render(self.factorize(target)[0][0], self.motion(driver))
            out["reenact_driver_target_output"] = torch.stack([driver, target, rendered])
        return {k: v.cpu() for k, v in out.items()}

    # -- controlled generation -------------------------------------------------------------
    @torch.no_grad()
    def mouth_factor(self, frames: Tensor) -> Tensor:
        """z_1..L-1 of each frame (what reenactment takes from the driver), flattened: [T,D]."""
        return torch.cat(
            [
                flatten_levels(self.factorize(frames[i : i + 64])[1])
                for i in range(0, len(frames), 64)
            ]
        )

    @torch.no_grad()
    def render_mouth(self, face: Tensor, factors: Tensor, batch_size: int = 64) -> Tensor:
        """The face's z_L with z_1..L-1 from each of factors [N,D], under the face's condition."""
        _, cond, encoding = self._encode(face[None])
        top = encoding.zs[-1]
        shapes = [tuple(z.shape[1:]) for z in encoding.zs[:-1]]
        out = []
        for i in range(0, len(factors), batch_size):
            fine = unflatten_levels(factors[i : i + batch_size].to(self.device), shapes)
            n = len(fine[0])
            zs = [*fine, top.expand(n, *top.shape[1:])]
            out.append(self.decode(zs, [c.expand(n, *c.shape[1:]) for c in cond]))
        return torch.cat(out)

    @torch.no_grad()
    def draw_mouth(
        self,
        face: Tensor,
        condition: Tensor,
        n: int,
        temperature: float = 0.7,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The face's z_L with z_1..L-1 drawn from their priors given the condition frame's c."""
        top = self.identity(face[None])
        cond = [c.expand(n, *c.shape[1:]) for c in self._encode(condition[None]).cond]
        given = [None] * (len(cond) - 1) + [top.expand(n, *top.shape[1:])]
        zs = self.flow.sample_latents(n, temperature, cond, given, generator)
        return self.decode(zs, cond)

    def decode(self, zs: list[Tensor], cond: list[Tensor]) -> Tensor:
        x, _ = self.flow.inverse(zs, cond)
        return postprocess(x, self.n_bits)
