import pytest
import torch

from factorflow.config import load_config
from factorflow.models import build_model
from factorflow.models.base import BatchRandom


def _model(**mc):
    config = load_config(
        "tiny", {"model": "motioncode", "af": {"num_words": 3}, "mc": {"num_speakers": 4, **mc}}
    )
    torch.manual_seed(0)
    return build_model(config)


def _batch(b: int = 4, t: int = 5) -> dict:
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (b, t, 3, 16, 16), generator=gen, dtype=torch.uint8)
    return {"frames": frames, "word": torch.tensor([0, 1, 2, -1]), "speaker": torch.arange(b)}


def test_losses_are_per_clip_and_train_only_what_they_should():
    model = _model()
    model.initialize({"frames": _batch()["frames"]})
    terms = model.losses(_batch(), BatchRandom.seeded(0))
    assert set(model.loss_weights) == {"cls", "confusion", "speaker", "rec"}
    for key in ("cls", "confusion", "speaker", "rec", "word_acc"):
        assert terms[key].shape == (4,)
    assert terms["cls"][3] == 0  # unknown word: no loss
    # the confusion term moves the encoder, never the adversary; the adversary's loss the reverse
    terms["confusion"].sum().backward(retain_graph=True)
    assert all(p.grad is None for p in model.adversary.parameters())
    assert any(p.grad is not None for p in model.encoder.parameters())
    model.zero_grad(set_to_none=True)
    terms["speaker"].sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.flow.parameters())


def test_reenact_shows_the_targets_frames_or_a_flow_blend_of_them():
    model = _model().eval()
    batch = _batch()
    model.initialize({"frames": batch["frames"]})
    driver, target = batch["frames"][0], batch["frames"][1]
    out = model.reenact(driver, target)
    assert out.shape == driver.shape and out.dtype == torch.uint8
    assert all(any(torch.equal(o, f) for f in target) for o in out)  # target frames, exact
    # the driver reenacting itself picks its own frames back (same codes, same clip mean)
    assert torch.equal(model.reenact(driver, driver), driver)
    blend = _model(top_k=3).eval()
    blend.load_state_dict(model.state_dict())
    mixed = blend.reenact(driver, target)
    assert mixed.shape == driver.shape
    s, r = model.factorize(driver)
    assert r[0].shape == (5, model.cfg.code_dim) and s[0].shape[0] == 1


def test_needs_labels_to_learn():
    model = _model(num_speakers=0, w_rec=0.0)
    model.classifier = None
    with pytest.raises(ValueError, match="word labels, speaker ids"):
        model.losses(_batch(), BatchRandom.seeded(0))


def test_reconstruction_term_trains_encoder_and_decoder():
    model = _model(w_rec=1.0, rec_frames=2)
    terms = model.losses(_batch(), BatchRandom.seeded(0))
    assert model.loss_weights["rec"] == 1.0 and terms["rec"].shape == (4,)
    terms["rec"].sum().backward()
    assert any(p.grad is not None for p in model.decoder.parameters())
    assert any(p.grad is not None for p in model.encoder.parameters())
