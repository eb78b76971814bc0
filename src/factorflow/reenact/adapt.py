"""`reenact --adapt-steps N`: a short fine-tuning of a mouth-paste model on pairs of the target
video's own frames, so the flow learns this face's teeth and mouth shading without forgetting
the rest (a fifth of the training rate, a warm-up of a tenth of the steps). Nothing is saved: the
adapted weights serve one reenactment."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import default_collate

from factorflow.models.base import BatchRandom, FlowModel

__all__ = ["adapt"]

log = logging.getLogger(__name__)


def adapt(
    model: FlowModel,
    pairs,
    steps: int,
    batch_size: int = 8,
    lr: float = 2e-4,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Adam on random batches of `pairs` (a `data.pairs.PairDataset`) -> the loss history
    (every 10th step and the last). The model is left in eval mode."""
    if steps < 1:
        raise ValueError(f"--adapt-steps must be >= 1, got {steps}")
    model.train()
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    warmup = max(1, steps // 10)
    history = []
    for step in range(steps):
        idx = torch.randint(len(pairs), (batch_size,), generator=generator).tolist()
        batch = default_collate([pairs[i] for i in idx])
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        terms = model.losses(batch, BatchRandom.seeded(seed * 1_000_003 + step))
        loss = sum(w * terms[k].mean() for k, w in model.loss_weights.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), 50.0)
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            history.append(
                {"step": step, **{k: float(v.detach().mean()) for k, v in terms.items()}}
            )
            log.info("adapt step %d: %s", step, history[-1])
    model.eval()
    return history
