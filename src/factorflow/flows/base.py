"""The bijection contract every flow layer of factorflow follows.

A ``Bijection`` maps a batch ``x`` to a batch ``y`` of the same number of samples and reports the
log-absolute-determinant of its Jacobian per sample. Every subclass MUST obey these rules; the
parametrised test in ``tests/flows/test_flows_bijections.py`` checks them against autograd.

1. ``forward(x, cond=None)`` MUST return exactly ``(y, logdet)`` and ``inverse(y, cond=None)`` MUST
   return exactly ``(x, logdet)``. The return arity never depends on a flag or on the mode.
2. ``logdet`` MUST have shape ``[B]`` (one value per sample, summed over all other dimensions), the
   dtype and device of the input, and be ``log |det dy/dx|`` of that sample.
3. ``inverse(forward(x)[0])[0]`` MUST equal ``x`` up to floating point error, and the logdet
   returned by ``inverse`` MUST be minus the one ``forward`` returns for the corresponding pair.
4. ``cond`` is an optional per-sample condition (``[B, ...]``). A bijection that takes no condition
   MUST ignore it, so that containers can pass the same ``cond`` to every member. A conditional
   bijection MUST raise ``ValueError`` when ``cond`` is missing or has the wrong shape, and MUST
   be a bijection of ``x`` for every fixed ``cond`` (the condition is never transformed).
5. Data-dependent state (such as ActNorm's initialisation) MUST live in registered buffers, so that
   ``state_dict``/``load_state_dict`` restore it and a reloaded model never re-initialises.
6. Layers whose parameters are initialised to the identity (zero-initialised convolutions) MUST
   still be exact bijections once those parameters are anything else; tests randomise them.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

__all__ = ["Bijection", "FlowSequence", "zero_logdet"]


class Bijection(nn.Module):
    """Base class of an invertible layer; see the module docstring for the contract."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Map ``x`` [B, ...] to ``(y, logdet)``, ``logdet`` [B] = log|det dy/dx| per sample."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Map ``y`` [B, ...] back to ``(x, logdet)``, ``logdet`` [B] = log|det dx/dy|."""
        raise NotImplementedError(f"{type(self).__name__} does not implement inverse")

    def rebuild(self, y: Tensor, cond: Tensor | None = None) -> tuple[list[Tensor], Tensor, Tensor]:
        """For invertible recomputation (`flows.recompute`): the input of output ``y`` as new
        leaf tensors requiring grad (their concatenation along dim 1 is ``x``), and ``forward``
        of them with autograd on, ``(y', logdet)``. This default inverts, then runs forward;
        a layer can share work between the two (the couplings evaluate their net once)."""
        with torch.no_grad():
            x, _ = self.inverse(y, cond)
        x = x.requires_grad_(True)
        return [x], *self(x, cond)


class FlowSequence(Bijection):
    """Composition of bijections applied in order; ``inverse`` undoes them in reverse order.

    The same ``cond`` is passed to every member (unconditional members ignore it).
    """

    def __init__(self, bijections: Iterable[Bijection]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(bijections)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Bijection):
                raise TypeError(
                    f"FlowSequence member {i} is {type(layer).__name__}, not a Bijection"
                )

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Bijection:
        return self.layers[index]

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = zero_logdet(x)
        for layer in self.layers:
            x, ld = layer(x, cond)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = zero_logdet(y)
        for layer in reversed(self.layers):
            y, ld = layer.inverse(y, cond)
            logdet = logdet + ld
        return y, logdet


def zero_logdet(x: Tensor) -> Tensor:
    """Zero log-determinant [B] matching the batch, dtype and device of ``x``."""
    return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
