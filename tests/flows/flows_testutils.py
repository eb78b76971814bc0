"""Helpers shared by the flows tests (a uniquely named module, not a conftest)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from factorflow.flows import ActNorm


@torch.no_grad()
def randomize_(module: nn.Module, scale: float = 0.1, seed: int = 0) -> nn.Module:
    """Perturb every parameter (so zero-initialised layers are no longer the identity) and mark
    every ActNorm initialised, so that no data-dependent init overwrites the perturbation."""
    gen = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        p.add_(scale * noise.to(p.dtype))
    for m in module.modules():
        if isinstance(m, ActNorm):
            m.initialized.fill_(True)
    return module


def jacobian_logabsdet(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """log|det J| of ``fn`` at one flattened sample ``x`` [D] (``fn``: [D] -> [D])."""
    jac = torch.autograd.functional.jacobian(fn, x)
    assert jac.shape == (x.numel(), x.numel())
    sign, logabsdet = torch.linalg.slogdet(jac)
    assert sign != 0, "singular Jacobian"
    return logabsdet
