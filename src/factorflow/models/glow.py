"""Plain Glow as a model: likelihood training on frames; reenactment by level swap.

Level swap is the untrained baseline of EVALUATION.md: the finer latents z_1..z_{L-1} come from the
driver frame, the top latent z_L from the target (its mean over the target's frames).
"""

from __future__ import annotations

import torch
from torch import Tensor

from factorflow.config import Config
from factorflow.flows import Glow
from factorflow.flows.likelihood import bits_per_dim, dequantize, postprocess
from factorflow.models.base import Batch, BatchRandom, FlowModel

__all__ = ["GlowModel"]


class GlowModel(FlowModel):
    name = "glow"

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.n_bits = config.flow.n_bits
        self.flow = Glow(config.flow)

    @classmethod
    def around(cls, flow: Glow, n_bits: int) -> GlowModel:
        """A Glow model sharing an existing (trained) flow, in eval mode."""
        model = cls.__new__(cls)
        FlowModel.__init__(model)
        model.n_bits = n_bits
        model.flow = flow
        return model.eval()

    def plain_glow(self) -> GlowModel:
        return self

    def _x(self, frames: Tensor, rand: BatchRandom | None) -> Tensor:
        return dequantize(frames.to(self.device), self.n_bits, rand)

    def initialize(self, batch: Batch) -> None:
        self.flow.initialize(self._x(batch["image"], None))

    def losses(self, batch: Batch, rand: BatchRandom) -> dict[str, Tensor]:
        x = self._x(batch["image"], rand)
        log_prob = self.flow.log_prob(x)
        return {"bpd": bits_per_dim(log_prob, x[0].numel(), self.n_bits)}

    @torch.no_grad()
    def encode(self, frames: Tensor) -> list[Tensor]:
        """uint8 [B,3,H,W] -> latents z_1..z_L (bin-centre dequantisation, no noise)."""
        zs, _ = self.flow(self._x(frames, None))
        return zs

    @torch.no_grad()
    def decode(self, zs: list[Tensor]) -> Tensor:
        x, _ = self.flow.inverse(zs)
        return postprocess(x, self.n_bits)

    def factorize(self, frames: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Level swap's split: s = the top latent z_L, r = the finer latents z_1..L-1."""
        zs = self.encode(frames)
        return [zs[-1]], list(zs[:-1])

    def identity(self, target: Tensor) -> list[Tensor]:
        return [z.mean(0, keepdim=True) for z in self.encode(target)]

    def motion(self, driver: Tensor) -> list[Tensor]:
        return self.encode(driver)

    def render(self, identity: list[Tensor], motion: list[Tensor]) -> Tensor:
        n = motion[0].shape[0]
        zs = [*motion[:-1], identity[-1].expand(n, *identity[-1].shape[1:])]
        return self.decode(zs)

    @torch.no_grad()
    def previews(self, batch: Batch) -> dict[str, Tensor]:
        frames = batch["image"][:8].to(self.device)
        return {
            "samples_t0.7": self.sample(8, temperature=0.7),
            "reconstructions": torch.stack([frames.cpu(), self.decode(self.encode(frames)).cpu()]),
        }
