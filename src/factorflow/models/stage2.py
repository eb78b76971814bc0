"""What a second-stage model shares: it is trained on the flow of a stage-1 Glow checkpoint."""

from __future__ import annotations

import torch

from factorflow.flows.likelihood import dequantize
from factorflow.models.base import Batch
from factorflow.models.glow import GlowModel


def load_flow_weights(flow: torch.nn.Module, path: str, prefix: str = "flow.") -> None:
    """Copy a trained flow's weights out of a checkpoint (run folder or step folder)."""
    from factorflow import checkpoint as ckpt

    state = ckpt.load(path)
    tensors = {k[len(prefix) :]: v for k, v in state.model.items() if k.startswith(prefix)}
    ckpt.load_model_state(flow, tensors, state.path)


class OnStageOneFlow:
    """Mixin for a `FlowModel` with a Glow `flow`, `n_bits` and the stage-1 checkpoint path
    `glow_checkpoint` ("" for none): loads that flow, initialises from frames, and is a plain
    Glow around its flow."""

    flow: torch.nn.Module
    n_bits: int
    device: torch.device

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
