"""Invertible recomputation gives plain autograd's gradients (float64), for every layer kind."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from factorflow.flows import Glow, GlowConfig
from factorflow.flows.base import FlowSequence
from factorflow.flows.recompute import recompute


def _randomised(config: GlowConfig) -> Glow:
    torch.manual_seed(0)
    glow = Glow(config).double()
    x = torch.rand(6, 3, config.image_size, config.image_size, dtype=torch.float64) - 0.5
    cond = _cond(config, 6)
    glow.initialize(x, cond) if cond is not None else glow.initialize(x)
    with torch.no_grad():  # zero-initialised nets and priors would hide errors
        for p in glow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return glow


def _cond(config: GlowConfig, batch: int) -> list[torch.Tensor] | None:
    if not config.cond_channels:
        return None
    gen = torch.Generator().manual_seed(1)
    return [
        torch.randn(batch, *shape, generator=gen, dtype=torch.float64)
        for shape in config.cond_shapes
    ]


def _grads(glow: Glow, x: torch.Tensor, cond: list[torch.Tensor] | None) -> list[torch.Tensor]:
    glow.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    cond = [c.clone().requires_grad_(True) for c in cond] if cond is not None else None
    (-glow.log_prob(x, cond).sum()).backward()
    extra = [x.grad] + ([c.grad for c in cond] if cond is not None else [])
    return [p.grad for p in glow.parameters()] + extra


CONFIGS = {
    "additive": GlowConfig(image_size=8, levels=2, steps=3, hidden=8, coupling="additive"),
    "affine-plain-conv": GlowConfig(
        image_size=8, levels=2, steps=2, hidden=8, coupling="affine", conv="plain"
    ),
    "conditional": GlowConfig(
        image_size=8,
        levels=2,
        steps=2,
        hidden=8,
        coupling="affine",
        cond_channels=2,
        prior_cond="kept+cond",
        coupling_cond=True,
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("levels", ["all", "0"])
def test_gradients_equal_plain_autograd(name: str, levels: str) -> None:
    config = CONFIGS[name]
    plain = _randomised(config)
    saving = Glow(dataclasses.replace(config, recompute=levels)).double()
    saving.load_state_dict(plain.state_dict())
    x = torch.rand(6, 3, 8, 8, dtype=torch.float64) - 0.5
    cond = _cond(config, 6)
    expected, got = _grads(plain, x, cond), _grads(saving, x, cond)
    assert len(expected) == len(got)
    for i, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert b is not None and torch.allclose(a, b, atol=1e-5, rtol=1e-5), i
    assert any(a.abs().max() > 1e-3 for a in expected)  # the comparison is not vacuous


def test_recompute_keeps_no_graph_of_the_layers() -> None:
    seq = _randomised(CONFIGS["additive"]).levels[0]
    x = (torch.rand(2, 3, 8, 8, dtype=torch.float64) - 0.5).requires_grad_(True)
    y, logdet = recompute(seq, x)
    assert y.grad_fn is not None and type(y.grad_fn).__name__ == "_RecomputeBackward"
    y_plain, logdet_plain = seq(x)
    assert torch.equal(y, y_plain) and torch.equal(logdet, logdet_plain)
    with torch.no_grad():
        y_eval, _ = recompute(seq, x)
    assert y_eval.grad_fn is None
    assert isinstance(seq, FlowSequence)


def test_bad_level_list_is_named() -> None:
    with pytest.raises(ValueError, match=r"recompute.*0\.\.1.*'0,5'"):
        GlowConfig(image_size=8, levels=2, steps=1, hidden=4, recompute="0,5")
