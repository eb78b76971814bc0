"""Hybrid (METHOD.md section 5): attribute factorization on the MI-flow's latents.

The flow is the MI-flow of stage 1 (`train --model hybrid` trains an "mi" run first), its
condition computed from the frames. The split z_l = s_l + r_l covers the levels z_1..L-1 only:
the top level's encoder is the zero map, so r_L = 0 and s_L = z_L (the MI-flow made z_L the
condition-free identity latent). The AF losses run unchanged on that split, and reenactment takes
z_L and the s parts from the target, the r parts from the driver.

Stage 2 trains the encoders and the word classifier on the frozen flow and condition net (thesis);
with `af.joint` both are fine-tuned, regularised by the MI-flow's terms (its `loss_weights`
scaled by `af.w_nll`; CLUB's q keeps weight 1, it only fits itself).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from factorflow.config import Config
from factorflow.factor.condition import make_condition
from factorflow.factor.mi import MIObjective
from factorflow.flows import Glow
from factorflow.flows.glow import GlowEncoding
from factorflow.flows.likelihood import dequantize, postprocess
from factorflow.models.af import AFModel
from factorflow.models.base import Batch, BatchRandom
from factorflow.models.mi import (
    Conditioned,
    Motion,
    conditional_bits_per_dim,
    encode_conditioned,
    mi_flow_config,
)

__all__ = ["HybridModel", "ZeroEncoder"]


class ZeroEncoder(nn.Module):
    """r = 0 for any latent: the level is all structure (s = z)."""

    def forward(self, z: Tensor) -> Tensor:
        return torch.zeros_like(z)


class HybridModel(AFModel):
    name = "hybrid"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.mi = config.mi
        flow_config = self.flow.config
        self.condition = make_condition(self.mi, flow_config.image_size, flow_config.levels)
        self.encoders[-1] = ZeroEncoder()
        self.objective = MIObjective(self.mi, flow_config) if self.cfg.joint else None
        if not self.cfg.joint:
            self.condition.requires_grad_(False)

    def build_flow(self, config: Config) -> Glow:
        return Glow(mi_flow_config(config))

    @property
    def loss_weights(self) -> dict[str, float]:
        weights = super().loss_weights
        if self.objective is not None:
            scale = self.cfg.w_nll
            for key, w in self.objective.weights.items():
                weights[key] = w if key == "club_q" else scale * w
        return weights

    def load_pretrained(self) -> None:
        """Flow and condition net from the stage-1 MI-flow checkpoint `af.glow_checkpoint`."""
        path = self.cfg.glow_checkpoint
        if not path:
            return
        from factorflow import checkpoint as ckpt

        state = ckpt.load(path)
        model = state.config.get("model")
        if model not in ("mi", "hybrid"):
            raise ValueError(
                f"af.glow_checkpoint {state.path} holds a {model!r} model: the hybrid starts from "
                "an MI-flow ('mi') checkpoint"
            )
        for prefix, module in (("flow.", self.flow), ("condition.", self.condition)):
            tensors = {k[len(prefix) :]: v for k, v in state.model.items() if k.startswith(prefix)}
            ckpt.load_model_state(module, tensors, state.path)

    def initialize(self, batch: Batch) -> None:
        frames = batch["frames"].flatten(0, 1).to(self.device)
        centre = dequantize(frames, self.n_bits, None)
        with torch.no_grad():
            self.flow.initialize(centre, self.condition(centre))

    def _encode(self, frames: Tensor, rand: BatchRandom | None = None) -> Conditioned:
        with torch.set_grad_enabled(self.cfg.joint and torch.is_grad_enabled()):
            return encode_conditioned(
                self.flow, self.condition, frames.to(self.device), self.n_bits, rand
            )

    def encode(self, frames: Tensor, rand: BatchRandom | None = None) -> GlowEncoding:
        """uint8 [N,3,H,W] -> latents z_1..z_L, logdet [N] and kept halves, given the condition."""
        return self._encode(frames, rand).encoding

    def flow_terms(
        self, frames: Tensor, encoding: GlowEncoding, rand: BatchRandom
    ) -> dict[str, Tensor]:
        """Joint training: the MI-flow's terms per frame [N] on the latents AF just used."""
        centre = dequantize(frames.to(self.device), self.n_bits, None)
        cond = self.condition(centre)
        return self.objective(self.flow, cond, encoding, centre, rand.generator)

    def flow_condition(self, x: Tensor) -> list[Tensor]:
        return self.condition(x)

    @torch.no_grad()
    def bits_per_dim(self, frames: Tensor, rand: BatchRandom | None = None) -> Tensor:
        return conditional_bits_per_dim(
            self.flow, self.condition, frames.to(self.device), self.n_bits, rand
        )

    # -- reenactment: identity() (mean s per level, s_L = z_L) comes from AFModel -----------
    @torch.no_grad()
    def motion(self, driver: Tensor, structure_mean: list[Tensor] | None = None) -> Motion:
        _, cond, encoding = self._encode(driver)
        return Motion(self.transferred(*self.split(encoding.zs), structure_mean), cond)

    @torch.no_grad()
    def render(self, identity: list[Tensor], motion: Motion) -> Tensor:
        """s (target) + r (driver) per level, decoded with the driver's condition (read only by
        coupling nets with `mi.coupling_cond`; the priors play no part in an exact decode)."""
        zs = [s + r for s, r in zip(identity, motion.latents, strict=True)]
        x, _ = self.flow.inverse(zs, motion.cond)
        return postprocess(x, self.n_bits)

    # -- controlled generation -------------------------------------------------------------
    def _mouth_motion(self, face: Tensor, rs: list[Tensor]) -> Motion:
        cond = self._encode(face[None]).cond
        return Motion(rs, [c.expand(len(rs[0]), *c.shape[1:]) for c in cond])

    @torch.no_grad()
    def draw_mouth(
        self,
        face: Tensor,
        condition: Tensor,
        n: int,
        temperature: float = 0.7,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """z_1..L-1 drawn from the MI-flow's priors given the condition frame's c (and the face's
        z_L); their r on the face's s: s (face) + r (draw) per level, decoded under that c."""
        zs = self._encode(face[None]).encoding.zs
        ss, _ = self.split(zs)
        cond = [c.expand(n, *c.shape[1:]) for c in self._encode(condition[None]).cond]
        given = [None] * (len(zs) - 1) + [zs[-1].expand(n, *zs[-1].shape[1:])]
        drawn = self.flow.sample_latents(n, temperature, cond, given, generator)
        _, rs = self.split(drawn)
        return self.render(ss, Motion(rs, cond))
