"""The whole Glow: exactness, logdet vs autograd, priors, sampling, conditions, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from flows_testutils import jacobian_logabsdet, randomize_
from safetensors.torch import load_file, save_file

from factorflow.flows import ActNorm, Glow, GlowConfig, InvConv1x1LU, gaussian_log_prob

TINY = {"image_size": 8, "levels": 2, "steps": 2, "hidden": 8}


def _cond_config(prior_cond: str, coupling_cond: bool, **kw) -> GlowConfig:
    # With prior_cond="kept" the condition must still be read somewhere: the top prior.
    return GlowConfig(
        **{**TINY, **kw},
        cond_channels=2,
        prior_cond=prior_cond,
        coupling_cond=coupling_cond,
        top_cond=prior_cond == "kept",
    )


def _cond(config: GlowConfig, batch: int, seed: int = 1, dtype=torch.float32) -> list:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *s, generator=gen, dtype=dtype) for s in config.cond_shapes]


def _images(batch: int, size: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=gen, dtype=dtype) - 0.5


def test_latent_shapes_of_the_reference_configuration() -> None:
    assert GlowConfig().latent_shapes == [(6, 32, 32), (12, 16, 16), (24, 8, 8), (96, 4, 4)]
    assert [s[1:] for s in GlowConfig(cond_channels=4, top_cond=True).cond_shapes] == [
        (32, 32),
        (16, 16),
        (8, 8),
        (4, 4),
    ]


@pytest.mark.parametrize(
    ("coupling", "conv"), [("additive", "lu"), ("affine", "lu"), ("affine", "plain")]
)
def test_round_trip_float32_32x32(coupling: str, conv: str) -> None:
    torch.manual_seed(0)
    config = GlowConfig(image_size=32, levels=3, steps=4, hidden=32, coupling=coupling, conv=conv)
    glow = Glow(config)
    x = _images(4, 32)
    glow.initialize(x)
    randomize_(glow, scale=0.05)
    glow.eval()
    with torch.no_grad():
        zs, logdet = glow(x)
        assert [tuple(z.shape[1:]) for z in zs] == glow.latent_shapes
        x_back, logdet_inv = glow.inverse(zs)
    assert (x_back - x).abs().max().item() < 1e-4
    torch.testing.assert_close(logdet_inv, -logdet, rtol=1e-5, atol=1e-3)
    assert logdet.abs().min() > 1.0


@pytest.mark.parametrize(
    "config",
    [
        GlowConfig(**TINY, coupling="affine"),
        GlowConfig(**TINY, coupling="additive", conv="plain"),
        GlowConfig(**TINY, coupling="affine", cond_channels=2, coupling_cond=True),
    ],
    ids=["affine_lu", "additive_plain", "affine_coupling_cond"],
)
def test_logdet_matches_autograd_jacobian(config: GlowConfig) -> None:
    torch.manual_seed(0)
    glow = randomize_(Glow(config).double(), scale=0.1).eval()
    x = _images(2, 8, dtype=torch.float64)
    cond = _cond(config, 2, dtype=torch.float64) if config.cond_channels else None
    zs, logdet = glow(x, cond)
    for i in range(2):
        c_i = None if cond is None else [c[i : i + 1] for c in cond]

        def encode(v: torch.Tensor, c_i=c_i) -> torch.Tensor:
            return torch.cat([z.reshape(-1) for z in glow(v.view(1, 3, 8, 8), c_i)[0]])

        expected = jacobian_logabsdet(encode, x[i].reshape(-1))
        torch.testing.assert_close(logdet[i], expected, rtol=1e-9, atol=1e-8)


def test_log_prob_is_logdet_plus_prior_terms_and_priors_match_their_params() -> None:
    torch.manual_seed(0)
    config = GlowConfig(**TINY, coupling="affine")
    glow = randomize_(Glow(config), scale=0.1)
    x = _images(3, 8)
    zs, logdet, kept = glow.encode(x)
    terms = glow.prior_log_prob(zs)
    torch.testing.assert_close(terms, glow.prior_log_prob(zs, kept=kept))
    torch.testing.assert_close(glow.log_prob(x), logdet + sum(terms))
    for level in range(config.levels):
        mean, logstd = glow.prior_params(level, zs)
        assert mean.abs().max() > 0 and logstd.abs().max() > 0, "randomised priors"
        torch.testing.assert_close(terms[level], gaussian_log_prob(zs[level], mean, logstd))


def test_gradients_reach_every_parameter_with_and_without_checkpointing() -> None:
    torch.manual_seed(0)
    kw = dict(cond_channels=2, prior_cond="kept+cond", coupling_cond=True, top_cond=True)
    glow = randomize_(Glow(GlowConfig(**TINY, coupling="affine", **kw)), scale=0.1)
    ckpt = Glow(GlowConfig(**TINY, coupling="affine", checkpoint=True, **kw))
    ckpt.load_state_dict(glow.state_dict())
    x, cond = _images(2, 8), _cond(glow.config, 2)
    grads = []
    for model in (glow, ckpt):
        (-model.log_prob(x, cond).mean()).backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        assert grad is not None and grad.abs().sum() > 0, f"no gradient reaches {name}"
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6)


def test_save_load_safetensors_gives_identical_outputs_and_no_reinit(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = GlowConfig(**TINY, coupling="affine")
    glow = Glow(config)
    glow.initialize(_images(8, 8))
    randomize_(glow, scale=0.1)
    path = tmp_path / "glow.safetensors"
    save_file(glow.state_dict(), str(path))

    torch.manual_seed(1)
    reloaded = Glow(config)
    reloaded.load_state_dict(load_file(str(path)))
    assert all(m.is_initialized() for m in reloaded.modules() if isinstance(m, ActNorm))
    x = _images(4, 8, seed=3)
    reloaded.train()
    lp = reloaded.log_prob(3.0 * x)  # training-mode forward on other data: must not re-init
    for key, value in load_file(str(path)).items():
        assert torch.equal(reloaded.state_dict()[key], value), f"{key} changed after loading"
    glow.eval(), reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.log_prob(x), glow.log_prob(x), rtol=0, atol=0)
        zs = glow(x)[0]
        torch.testing.assert_close(reloaded(x)[0], zs, rtol=0, atol=0)
        torch.testing.assert_close(reloaded.inverse(zs)[0], glow.inverse(zs)[0], rtol=0, atol=0)
    assert torch.isfinite(lp).all()


def test_initialize_is_idempotent_and_restores_modes() -> None:
    torch.manual_seed(0)
    glow = Glow(GlowConfig(**TINY)).eval()
    glow.initialize(_images(8, 8))
    assert not glow.training
    state = {k: v.clone() for k, v in glow.state_dict().items()}
    glow.initialize(_images(8, 8, seed=5) * 0.3)
    for key, value in glow.state_dict().items():
        assert torch.equal(value, state[key]), key
    zs, _ = glow(_images(64, 8, seed=6))
    # After init the first level's activations are standardised, so latents have unit-ish scale.
    assert 0.3 < zs[0].std().item() < 3.0


def test_constant_image_channel_gives_finite_likelihood() -> None:
    torch.manual_seed(0)
    glow = Glow(GlowConfig(**TINY))
    x = _images(4, 8)
    x[:, 2] = 0.1
    glow.initialize(x)
    assert torch.isfinite(glow.log_prob(x)).all()


def test_sampling_shapes_given_latents_and_temperature_zero_is_the_prior_mean() -> None:
    torch.manual_seed(0)
    config = GlowConfig(**{**TINY, "levels": 3, "image_size": 16}, coupling="affine")
    glow = randomize_(Glow(config), scale=0.1).eval()
    with torch.no_grad():
        zs = glow.sample_latents(3)
        assert [tuple(z.shape) for z in zs] == [(3, *s) for s in glow.latent_shapes]
        assert glow.sample(3, temperature=0.7).shape == (3, 3, 16, 16)

        zs0 = glow.sample_latents(2, temperature=0.0)
        for level in range(config.levels):
            mean, _ = glow.prior_params(level, zs0)
            assert mean.abs().max() > 0
            torch.testing.assert_close(zs0[level], mean, rtol=0, atol=1e-6)

        given = [None, zs[1][:2], None]
        out = glow.sample_latents(2, temperature=1.0, given=given)
        assert torch.equal(out[1], zs[1][:2])
        # the finest level is drawn given the kept half decoded from the given level above
        mean, logstd = glow.prior_params(0, out)
        assert not torch.allclose(out[0], mean)
        out_top = glow.sample_latents(2, given=[None, None, zs[2][:2]], temperature=0.0)
        assert torch.equal(out_top[2], zs[2][:2])

        x = glow.sample(2, temperature=0.0)
        torch.testing.assert_close(x, glow.inverse(glow.sample_latents(2, temperature=0.0))[0])


@pytest.mark.parametrize("prior_cond", ["kept", "cond"])
def test_sampled_latents_are_standard_normal_under_their_priors(prior_cond: str) -> None:
    # Sampling and prior_params must agree: standardised samples are N(0, 1) at every level.
    torch.manual_seed(0)
    kw = {"cond_channels": 2, "top_cond": True} if prior_cond == "cond" else {}
    config = GlowConfig(**TINY, coupling="affine", prior_cond=prior_cond, **kw)
    glow = randomize_(Glow(config), scale=0.1).eval()
    n = 400
    cond = _cond(config, n) if config.cond_channels else None
    with torch.no_grad():
        zs = glow.sample_latents(n, 1.0, cond, generator=torch.Generator().manual_seed(0))
        for level in range(config.levels):
            mean, logstd = glow.prior_params(level, zs, cond)
            assert logstd.std() > 0.01, "randomised priors vary"
            eps = (zs[level] - mean) * torch.exp(-logstd)
            assert abs(eps.mean().item()) < 0.02 and abs(eps.std().item() - 1.0) < 0.02
        zs_hot = glow.sample_latents(n, 0.5, cond)
        mean, logstd = glow.prior_params(0, zs_hot, cond)
        assert abs(((zs_hot[0] - mean) * torch.exp(-logstd)).std().item() - 0.5) < 0.02


def test_sampling_is_reproducible_with_a_generator() -> None:
    glow = Glow(GlowConfig(**TINY)).eval()
    with torch.no_grad():
        a = glow.sample(2, generator=torch.Generator().manual_seed(4))
        b = glow.sample(2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("prior_cond", "coupling_cond"),
    [("kept", False), ("cond", False), ("kept+cond", False), ("cond", True)],
)
def test_conditional_glow(prior_cond: str, coupling_cond: bool) -> None:
    torch.manual_seed(0)
    config = _cond_config(prior_cond, coupling_cond, coupling="affine")
    glow = randomize_(Glow(config), scale=0.1).eval()
    x = _images(2, 8)
    cond, other = _cond(config, 2, seed=1), _cond(config, 2, seed=2)
    with torch.no_grad():
        zs, logdet, kept = glow.encode(x, cond)
        x_back, _ = glow.inverse(zs, cond)
        torch.testing.assert_close(x_back, x, rtol=0, atol=1e-5)
        terms = glow.prior_log_prob(zs, cond)
        torch.testing.assert_close(terms, glow.prior_log_prob(zs, cond, kept))
        lp = glow.log_prob(x, cond)
        torch.testing.assert_close(lp, logdet + sum(terms))
        assert not torch.allclose(lp, glow.log_prob(x, other)), "the condition must matter"
        # The split prior of level 0 reads exactly what prior_cond says (with coupling_cond the
        # kept half itself depends on the condition).
        shifted = [zs[0], zs[1] + 1.0]
        mean_c, _ = glow.prior_params(0, zs, cond)
        same_kept_other_cond = torch.allclose(mean_c, glow.prior_params(0, zs, other)[0])
        other_kept_same_cond = torch.allclose(mean_c, glow.prior_params(0, shifted, cond)[0])
        assert same_kept_other_cond == (prior_cond == "kept" and not coupling_cond)
        assert other_kept_same_cond == (prior_cond == "cond")
        if prior_cond == "cond":
            mean_only, _ = glow.prior_params(0, [None, None], cond)
            torch.testing.assert_close(mean_only, mean_c)
        top_same = torch.allclose(
            glow.prior_params(1, zs, cond)[0], glow.prior_params(1, zs, other)[0]
        )
        assert top_same == (not config.top_cond)
        assert glow.sample(2, 0.5, cond).shape == x.shape
        with pytest.raises(ValueError, match="cond"):
            glow.log_prob(x)


def test_top_cond_and_fixed_top_prior() -> None:
    torch.manual_seed(0)
    config = GlowConfig(**TINY, cond_channels=2, top_cond=True, learn_top=False)
    glow = randomize_(Glow(config), scale=0.1)
    cond, other = _cond(config, 2, seed=1), _cond(config, 2, seed=2)
    cond[0] = other[0] = None  # only the top level reads the condition
    zs = glow(_images(2, 8), cond)[0]
    assert not torch.allclose(glow.prior_params(1, zs, cond)[0], glow.prior_params(1, zs, other)[0])
    plain = Glow(GlowConfig(**TINY, learn_top=False))
    assert plain.top_prior.bias is None and plain.top_prior.conv is None
    mean, logstd = plain.prior_params(1, plain(_images(2, 8))[0])
    assert mean.abs().max() == 0 and logstd.abs().max() == 0


def test_argument_errors_name_the_problem() -> None:
    glow = Glow(GlowConfig(**TINY))
    with pytest.raises(ValueError, match=r"\[B, \(3, 8, 8\)\]"):
        glow(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="unconditional"):
        glow(_images(2, 8), [torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 2, 2)])
    with pytest.raises(ValueError, match=r"zs\[1\] must have shape"):
        glow.inverse([torch.zeros(2, 6, 4, 4), torch.zeros(2, 6, 2, 2)])
    with pytest.raises(ValueError, match="level must be in"):
        glow.prior_params(2, [None, None])
    with pytest.raises(ValueError, match=r"given\[0\]"):
        glow.sample_latents(2, given=[torch.zeros(3, 6, 4, 4), None])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 20, "levels": 3}, "divisible by 2\\*\\*levels"),
        ({"coupling": "spline"}, "coupling must be one of"),
        ({"conv": "full"}, "conv must be one of"),
        ({"prior_cond": "both"}, "prior_cond must be one of"),
        ({"prior_cond": "cond"}, "cond_channels=0"),
        ({"cond_channels": 4}, "nothing uses the condition"),
        ({"cond_channels": 4, "prior_cond": "cond", "levels": 1}, "nothing uses"),
        ({"checkpoint": "false"}, "checkpoint must be a bool"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"n_bits": 9}, "n_bits must be in 1..8"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GlowConfig(**kwargs)


def test_config_is_frozen_and_reference_size_matches_the_thesis() -> None:
    config = GlowConfig()
    with pytest.raises(AttributeError):
        config.levels = 3  # type: ignore[misc]
    n_params = sum(p.numel() for p in Glow(config).parameters())
    assert 60e6 < n_params < 62e6  # "about 61M parameters"
    assert isinstance(Glow(GlowConfig(**TINY)).levels[0][1][1], InvConv1x1LU)
