"""ActNorm's data-dependent initialisation as explicit, saved state."""

from __future__ import annotations

import torch

from factorflow.flows import ActNorm


def _batch() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = 3.0 + 2.0 * torch.randn(8, 3, 5, 5, generator=gen)
    x[:, 1] = 0.25  # a constant channel
    return x


def test_initialize_standardises_and_constant_channel_gives_no_nan() -> None:
    layer = ActNorm(3)
    x = _batch()
    layer.initialize(x)
    assert bool(layer.initialized)
    y, logdet = layer(x)
    assert torch.isfinite(y).all() and torch.isfinite(logdet).all()
    for c in (0, 2):
        assert abs(y[:, c].mean().item()) < 1e-5
        assert abs(y[:, c].std(correction=0).item() - 1.0) < 1e-4
    # The constant channel is centred and keeps unit scale.
    torch.testing.assert_close(y[:, 1], torch.zeros_like(y[:, 1]), rtol=0, atol=1e-6)
    assert layer.log_scale[0, 1].item() == 0.0
    x_back, _ = layer.inverse(y)
    torch.testing.assert_close(x_back, x, rtol=1e-5, atol=1e-5)


def test_first_training_forward_initialises_once_and_eval_does_not() -> None:
    x = _batch()
    layer = ActNorm(3).eval()
    layer(x)
    assert not bool(layer.initialized)
    layer.train()
    layer(x)
    assert bool(layer.initialized)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    layer(5.0 * x + 1.0)  # another batch must not re-initialise
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_initialized_flag_is_saved_and_a_reloaded_layer_never_reinitialises() -> None:
    x = _batch()
    trained = ActNorm(3)
    trained.initialize(x)
    state = trained.state_dict()
    assert "initialized" in state
    reloaded = ActNorm(3)
    reloaded(x)  # a training-mode forward before loading initialises the fresh layer...
    reloaded.load_state_dict(state)
    reloaded.train()
    y, _ = reloaded(7.0 * x - 2.0)  # ...but after loading, the saved parameters are kept
    torch.testing.assert_close(reloaded.log_scale, trained.log_scale, rtol=0, atol=0)
    torch.testing.assert_close(reloaded.bias, trained.bias, rtol=0, atol=0)
    torch.testing.assert_close(y, trained(7.0 * x - 2.0)[0], rtol=0, atol=0)


def test_loading_an_uninitialised_state_makes_the_layer_initialise_again() -> None:
    layer = ActNorm(3)
    layer.initialize(_batch())
    layer.load_state_dict(ActNorm(3).state_dict())
    assert not layer.is_initialized()
    layer(_batch())
    assert layer.is_initialized()
