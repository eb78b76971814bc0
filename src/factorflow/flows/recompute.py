"""Invertible recomputation: backpropagate through a flow without storing its activations.

A flow is invertible, so the backward pass can rebuild each layer's input from its output instead
of keeping the activations of every layer's forward pass (RevNet, Gomez et al. 2017; i-RevNet).
`recompute(seq, x, cond)` runs a `FlowSequence` forward without building a graph and keeps only
its output; backward walks the layers in reverse, each time rebuilding the layer's input from its
output (`Bijection.rebuild`: an inverse, then that one layer rerun with autograd on; a coupling
runs its net only once, since the net's input passes through unchanged) and passing the gradient
down. Peak memory is then one layer's activations plus the level's output, whatever the number of
layers; the price is about one extra forward pass (`benchmarks/recompute_memory.py` measures it).
Gradients equal plain autograd's up to the float error of the inverse (tests: 1e-5 in float64).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from factorflow.flows.base import Bijection, FlowSequence

__all__ = ["recompute"]


def _atoms(layer: Bijection) -> list[Bijection]:
    """The layers of nested `FlowSequence`s, in forward order."""
    if isinstance(layer, FlowSequence):
        return [atom for member in layer.layers for atom in _atoms(member)]
    return [layer]


class _Recompute(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, seq: FlowSequence, x: Tensor, cond: Tensor | None, *params: Tensor
    ) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            y, logdet = seq(x, cond)
        device = x.device.type  # backward reruns the layers under the same autocast as here
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.seq = seq
        ctx.params = params
        ctx.save_for_backward(y, cond)
        return y, logdet

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor | None, grad_logdet: Tensor | None) -> tuple:
        y, cond = ctx.saved_tensors
        grad_y = torch.zeros_like(y) if grad_y is None else grad_y
        if grad_logdet is None:
            grad_logdet = y.new_zeros(y.shape[0])
        want_cond = cond is not None and ctx.needs_input_grad[2]
        grads: dict[int, Tensor] = {}
        grad_cond = None
        device, enabled, dtype = ctx.autocast
        for layer in reversed(_atoms(ctx.seq)):
            params = [p for p in layer.parameters() if p.requires_grad]
            with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
                c = cond.detach().requires_grad_(True) if want_cond else cond
                leaves, out, logdet = layer.rebuild(y, c)
                # a constant logdet (squeeze, additive coupling) takes no part in the gradient
                pairs = [
                    (t, g) for t, g in ((out, grad_y), (logdet, grad_logdet)) if t.requires_grad
                ]
                inputs = [*leaves, *params, *([c] if want_cond else [])]
                found = torch.autograd.grad(
                    [t for t, _ in pairs],
                    inputs,
                    [g.to(t.dtype) for t, g in pairs],
                    allow_unused=True,
                )
            n = len(leaves)
            parts = [
                torch.zeros_like(v) if g is None else g for v, g in zip(leaves, found, strict=False)
            ]
            grad_y = parts[0] if n == 1 else torch.cat(parts, dim=1)
            for p, g in zip(params, found[n : n + len(params)], strict=True):
                if g is not None:
                    grads[id(p)] = g if id(p) not in grads else grads[id(p)] + g
            if want_cond and found[-1] is not None:
                grad_cond = found[-1] if grad_cond is None else grad_cond + found[-1]
            y = leaves[0].detach() if n == 1 else torch.cat([v.detach() for v in leaves], dim=1)
        return (None, grad_y, grad_cond, *[grads.get(id(p)) for p in ctx.params])


def recompute(seq: FlowSequence, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """`seq(x, cond)` -> (y, logdet), differentiable with respect to x, cond and the parameters
    of `seq`, storing no activation of its layers (see the module docstring). Without autograd
    (inference, `torch.no_grad`) it is `seq(x, cond)`."""
    params = [p for p in seq.parameters() if p.requires_grad]
    needs_grad = x.requires_grad or bool(params) or (cond is not None and cond.requires_grad)
    if not (torch.is_grad_enabled() and needs_grad):
        return seq(x, cond)
    return _Recompute.apply(seq, x, cond, *params)
