"""What a second-stage model shares: it is trained on the flow of a stage-1 Glow checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from factorflow.flows.likelihood import dequantize
from factorflow.models.base import Batch
from factorflow.models.glow import GlowModel

__all__ = ["OnStageOneFlow", "load_flow_weights"]


def load_flow_weights(flow: torch.nn.Module, path: str, prefix: str = "flow.") -> None:
    """Copy a trained flow's weights out of a checkpoint (run folder or step folder)."""
    from factorflow import checkpoint as ckpt

    state = ckpt.load(path)
    tensors = {k[len(prefix) :]: v for k, v in state.model.items() if k.startswith(prefix)}
    ckpt.load_model_state(flow, tensors, state.path)


class OnStageOneFlow:
    """Mixin for a `FlowModel` with a Glow `flow`, `n_bits` and the stage-1 checkpoint path
    `glow_checkpoint` ("" for none), trained on batches of clips: loads that flow, initialises
    from frames, is a plain Glow around its flow, and previews a reenactment."""

    flow: torch.nn.Module
    n_bits: int
    device: torch.device
    reenact: Callable[[Tensor, Tensor], Tensor]

    @property
    def glow_checkpoint(self) -> str:
        raise NotImplementedError

    def plain_glow(self) -> GlowModel | None:
        return GlowModel.around(self.flow, self.n_bits)

    def load_pretrained(self) -> None:
        if self.glow_checkpoint:
            load_flow_weights(self.flow, self.glow_checkpoint)

    def initialize(self, batch: Batch) -> None:
        frames = batch["frames"].flatten(0, 1).to(self.device)
        self.flow.initialize(dequantize(frames, self.n_bits, None))

    @torch.no_grad()
    def previews(self, batch: Batch) -> dict[str, Tensor]:
        """Clip 0 (its first 8 frames) driving clip 1: driver, target, output rows."""
        frames = batch["frames"]
        t = min(frames.shape[1], 8)
        driver, target = frames[0, :t], frames[1 % frames.shape[0]]
        out = self.reenact(driver.to(self.device), target.to(self.device)).cpu()
        return {"reenact_driver_target_output": torch.stack([driver, target[:t], out])}
