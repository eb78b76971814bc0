"""Caching of the 1x1 convolution weights and its invalidation."""

from __future__ import annotations

import pytest
import torch

from factorflow.flows import InvConv1x1, InvConv1x1LU


@pytest.mark.parametrize("cls", [InvConv1x1LU, InvConv1x1])
def test_cache_is_used_and_invalidated_by_an_optimizer_step(cls: type) -> None:
    torch.manual_seed(0)
    layer = cls(6)
    x = torch.randn(3, 6, 4, 4)
    layer.eval()
    with torch.no_grad():
        y, _ = layer(x)
        first = layer._cache
        layer.inverse(y)
        assert layer._cache is first, "unchanged parameters must reuse the cached weights"

    layer.train()
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    y_train, logdet = layer(x)
    (y_train.square().sum() - logdet.sum()).backward()
    opt.step()

    layer.eval()
    with torch.no_grad():
        y2, logdet2 = layer(x)
        assert not torch.allclose(y2, y), "the step must change the map"
        x_back, logdet_inv = layer.inverse(y2)
    torch.testing.assert_close(x_back, x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logdet_inv, -logdet2)
    expected = torch.linalg.slogdet(layer._weight().detach())[1] * 16
    torch.testing.assert_close(logdet2[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [InvConv1x1LU, InvConv1x1])
def test_cache_is_invalidated_by_load_state_dict(cls: type) -> None:
    torch.manual_seed(0)
    layer, other = cls(6).eval(), cls(6).eval()
    x = torch.randn(3, 6, 4, 4)
    with torch.no_grad():
        layer(x)  # fill the cache
        layer.load_state_dict(other.state_dict())
        y, _ = layer(x)
        x_back, _ = layer.inverse(y)
        y_other, _ = other(x)
    torch.testing.assert_close(y, y_other, rtol=0, atol=0)
    torch.testing.assert_close(x_back, x, rtol=1e-5, atol=1e-5)


def test_gradients_flow_when_training_and_cache_is_skipped() -> None:
    layer = InvConv1x1LU(4)
    y, logdet = layer.inverse(torch.randn(2, 4, 3, 3))
    (y.sum() + logdet.sum()).backward()
    for p in layer.parameters():
        assert p.grad is not None
    assert layer._cache is None


def test_frozen_layer_uses_cache_with_grad_enabled() -> None:
    layer = InvConv1x1LU(4).requires_grad_(False)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    y, _ = layer(x)
    y.sum().backward()
    assert layer._cache is not None and x.grad is not None


def test_lu_weight_is_a_rotation_at_init() -> None:
    layer = InvConv1x1LU(5)
    w = layer._weight().detach()
    torch.testing.assert_close(w @ w.T, torch.eye(5), rtol=0, atol=1e-5)
