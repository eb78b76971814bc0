"""One parametrised test of the bijection contract (flows/base.py) for every layer."""

from __future__ import annotations

import pytest
import torch
from flows_testutils import jacobian_logabsdet, randomize_

from factorflow.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Bijection,
    FlowSequence,
    Glow,
    GlowConfig,
    InvConv1x1,
    InvConv1x1LU,
    Squeeze,
)

B, C, S, COND = 2, 4, 4, 3


def _glow_level(coupling: str, conv: str, cond: bool) -> Bijection:
    config = GlowConfig(
        in_channels=C,
        image_size=S,
        levels=1,
        steps=2,
        hidden=8,
        coupling=coupling,
        conv=conv,
        cond_channels=COND if cond else 0,
        coupling_cond=cond,
    )
    return Glow(config).levels[0]


# name -> (factory, cond shape per sample or None)
CASES = {
    "actnorm": (lambda: ActNorm(C), None),
    "invconv_lu": (lambda: InvConv1x1LU(C), None),
    "invconv_plain": (lambda: InvConv1x1(C), None),
    "additive": (lambda: AdditiveCoupling(C, 8), None),
    "additive_cond": (lambda: AdditiveCoupling(C, 8, cond_channels=COND), (COND, S, S)),
    "affine": (lambda: AffineCoupling(C, 8), None),
    "affine_cond": (lambda: AffineCoupling(C, 8, cond_channels=COND), (COND, S, S)),
    "affine_checkpointed": (lambda: AffineCoupling(C, 8, checkpoint=True), None),
    "squeeze": (Squeeze, None),
    "sequence": (
        lambda: FlowSequence([ActNorm(C), InvConv1x1LU(C), AffineCoupling(C, 8)]),
        None,
    ),
    "glow_level_additive_lu": (lambda: _glow_level("additive", "lu", False), None),
    "glow_level_affine_plain_cond": (
        lambda: _glow_level("affine", "plain", True),
        (COND, S // 2, S // 2),
    ),
}
# Layers that squeeze (so only the number of elements is kept) and layers with logdet 0.
RESHAPING = {"squeeze", "glow_level_additive_lu", "glow_level_affine_plain_cond"}
VOLUME_PRESERVING = {"squeeze", "additive", "additive_cond"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bijection_contract(name: str) -> None:
    torch.manual_seed(0)
    factory, cond_shape = CASES[name]
    layer = randomize_(factory().double(), scale=0.3)
    layer.train()  # checkpointing and ActNorm's init path are only active in training mode
    x = torch.randn(B, C, S, S, dtype=torch.float64)
    cond = None if cond_shape is None else torch.randn(B, *cond_shape, dtype=torch.float64)

    y, logdet_fwd = layer(x, cond)
    assert y.shape[0] == B and y[0].numel() == x[0].numel()
    if name not in RESHAPING:
        assert y.shape == x.shape
    assert logdet_fwd.shape == (B,) and logdet_fwd.dtype == torch.float64
    x_back, logdet_inv = layer.inverse(y, cond)
    assert x_back.shape == x.shape
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet_inv, -logdet_fwd, rtol=0, atol=1e-10)

    for i in range(B):
        c_i = None if cond is None else cond[i : i + 1]

        def fwd(v: torch.Tensor, c_i=c_i) -> torch.Tensor:
            return layer(v.view(1, *x.shape[1:]), c_i)[0].reshape(-1)

        def inv(v: torch.Tensor, c_i=c_i) -> torch.Tensor:
            return layer.inverse(v.view(1, *y.shape[1:]), c_i)[0].reshape(-1)

        expected_fwd = jacobian_logabsdet(fwd, x[i].reshape(-1))
        expected_inv = jacobian_logabsdet(inv, y[i].reshape(-1))
        torch.testing.assert_close(logdet_fwd[i], expected_fwd, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(logdet_inv[i], expected_inv, rtol=1e-9, atol=1e-9)
    if name not in VOLUME_PRESERVING:
        assert logdet_fwd.abs().max() > 1e-3, "a non-trivial layer should change volume"


@pytest.mark.parametrize("cls", [AdditiveCoupling, AffineCoupling])
def test_conditional_coupling_requires_and_uses_cond(cls: type) -> None:
    torch.manual_seed(0)
    layer = randomize_(cls(C, 8, cond_channels=COND).double(), scale=0.3)
    x = torch.randn(B, C, S, S, dtype=torch.float64)
    with pytest.raises(ValueError, match="needs cond of shape"):
        layer(x)
    with pytest.raises(ValueError, match="needs cond of shape"):
        layer(x, torch.zeros(B, COND + 1, S, S, dtype=torch.float64))
    y1, _ = layer(x, torch.zeros(B, COND, S, S, dtype=torch.float64))
    y2, _ = layer(x, torch.ones(B, COND, S, S, dtype=torch.float64))
    assert not torch.allclose(y1, y2)


def test_unconditional_layers_ignore_cond() -> None:
    torch.manual_seed(0)
    layer = randomize_(FlowSequence([ActNorm(C), InvConv1x1LU(C), AffineCoupling(C, 8)]))
    x = torch.randn(B, C, S, S)
    y1, ld1 = layer(x)
    y2, ld2 = layer(x, torch.randn(B, 5, S, S))
    assert torch.equal(y1, y2) and torch.equal(ld1, ld2)


def test_zero_initialised_couplings_start_as_identity() -> None:
    x = torch.randn(B, C, S, S)
    for layer in (AdditiveCoupling(C, 8), AffineCoupling(C, 8)):
        y, _ = layer(x)
        torch.testing.assert_close(y[:, : C // 2], x[:, : C // 2], rtol=0, atol=0)
    y, _ = AdditiveCoupling(C, 8)(x)
    torch.testing.assert_close(y, x, rtol=0, atol=0)


def test_checkpointed_coupling_matches_gradients() -> None:
    torch.manual_seed(0)
    plain = randomize_(AffineCoupling(C, 8))
    ckpt = AffineCoupling(C, 8, checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(B, C, S, S)
    grads = []
    for layer in (plain, ckpt):
        layer.zero_grad()
        y, logdet = layer(x)
        (y.square().sum() - logdet.sum()).backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for g_plain, g_ckpt in zip(*grads, strict=True):
        torch.testing.assert_close(g_plain, g_ckpt)


def test_layers_reject_wrong_shapes() -> None:
    x = torch.randn(B, C + 1, S, S)
    for layer in (ActNorm(C), InvConv1x1LU(C), InvConv1x1(C), AffineCoupling(C, 8)):
        with pytest.raises(ValueError, match=str(C)):
            layer(x)
    with pytest.raises(ValueError, match="even"):
        Squeeze()(torch.randn(B, C, 3, 4))
