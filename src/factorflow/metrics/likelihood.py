"""Bits/dim of held-out frames under a model's flow and the flow's encode-decode error."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from factorflow.metrics.clips import spread_indices
from factorflow.models.base import BatchRandom, FlowModel

__all__ = ["held_out_likelihood", "likelihood"]


def likelihood(
    model: FlowModel, frames: Tensor, draws: int, seed: int, batch_size: int = 64
) -> dict[str, Any]:
    """Bits/dim of uint8 frames [N,3,H,W] under the model (`FlowModel.bits_per_dim`) at the bin
    centres and averaged over `draws` dequantisation noises, and the encode-decode error of its
    flow. A conditional flow (MI-flow, hybrid) reads the condition its model computes from the
    frame (`model.flow_condition`); its bits/dim is then conditional on that, flagged
    "conditional"."""
    rand = BatchRandom.seeded(seed, model.device)
    centre, noisy, err, mismatch = [], [], 0.0, 0
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            batch = frames[i : i + batch_size].to(model.device)
            centre.append(model.bits_per_dim(batch).cpu())
            draws_bpd = [model.bits_per_dim(batch, rand) for _ in range(draws)]
            noisy.append(torch.stack(draws_bpd).mean(0).cpu())
            batch_err, batch_mismatch = model.roundtrip_error(batch)
            err, mismatch = max(err, batch_err), mismatch + batch_mismatch
    out: dict[str, Any] = {
        "bpd_bin_centre": float(torch.cat(centre).mean()),
        "bpd_noise": float(torch.cat(noisy).mean()),
        "noise_draws": draws,
        "frames": len(frames),
        "conditional": model.plain_glow() is None,
        "encode_decode_max_abs_error": err,
        "encode_decode_uint8_mismatches": mismatch,
    }
    return out


def held_out_likelihood(
    model: FlowModel, frames: Tensor, n_frames: int, draws: int, seed: int
) -> dict[str, Any]:
    """`likelihood` on `n_frames` of uint8 frames [N,3,H,W] spread over the set, or the reason it
    was skipped for a model with no likelihood of a whole frame (the mouth flow)."""
    try:
        return likelihood(model, frames[spread_indices(len(frames), n_frames)], draws, seed)
    except NotImplementedError as exc:
        return {"skipped": str(exc)}
