"""The FlowModel interface every registered model answers (parametrised over the registry, as
diffusers' common model tests are): sample, plain_glow, roundtrip_error, factorize, reenact."""

from __future__ import annotations

import pytest
import torch

from factorflow.config import load_config
from factorflow.models import MODELS, build_model, spec
from factorflow.models.glow import GlowModel

FRAMES = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)


@pytest.fixture(params=sorted(MODELS))
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(load_config("tiny", [f"model={request.param}"])).eval()
    with torch.no_grad():  # a non-identity flow: an untrained ActNorm/coupling hides errors
        for p in net.flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def test_every_model_answers_the_interface(model: torch.nn.Module) -> None:
    assert model.image_size == 16
    out = model.reenact(FRAMES, FRAMES[:2])
    assert out.shape == FRAMES.shape and out.dtype == torch.uint8
    if spec(model.name).pipeline == "mouth-paste":
        # Its latents are of a mouth crop given the face tool's geometry, not of a frame: the
        # frame-level questions are refused by name (evaluate reports them as skipped).
        for question in (model.roundtrip_error, model.factorize, model.bits_per_dim):
            with pytest.raises(NotImplementedError, match="mouth"):
                question(FRAMES)
        assert torch.equal(out, FRAMES[[0, 1, 0, 1]])  # no face in noise: the target, looped
        return
    err, changed = model.roundtrip_error(FRAMES)
    assert err < 1e-4 and changed == 0
    s, r = model.factorize(FRAMES)
    assert all(torch.is_tensor(t) for t in [*s, *r])
    bpd = model.bits_per_dim(FRAMES)
    assert bpd.shape == (4,) and torch.isfinite(bpd).all()


def test_plain_glow_shares_the_flow_of_unconditional_models(model: torch.nn.Module) -> None:
    view = model.plain_glow()
    if model.flow.config.cond_channels > 0:  # their flows read a condition: no plain Glow
        assert view is None
        return
    assert isinstance(view, GlowModel) and view.flow is model.flow
    assert (view is model) == (model.name == "glow")


def test_sample_is_seeded_or_refused(model: torch.nn.Module) -> None:
    if not spec(model.name).can_sample:
        with pytest.raises(ValueError, match="needs a condition"):
            model.sample(2)
        return
    a = model.sample(3, 0.7, torch.Generator().manual_seed(1))
    b = model.sample(3, 0.7, torch.Generator().manual_seed(1))
    assert a.shape == (3, 3, 16, 16) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, model.sample(3, 0.7, torch.Generator().manual_seed(2)))
