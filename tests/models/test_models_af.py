"""AF losses as pure functions, the exact split z = s + r, and the AF model's training terms."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from factorflow.cli.main import main
from factorflow.config import load_config
from factorflow.factor import losses as L
from factorflow.factor.encoders import build_encoders
from factorflow.models import BatchRandom, build_model, load


def _rand(seed: int = 0):
    return BatchRandom.seeded(seed).rand


@pytest.mark.parametrize("n", [2, 3, 5, 16])
def test_derangement_moves_every_element(n: int) -> None:
    perm = L.derangement(n, 200, _rand())
    assert perm.shape == (200, n)
    assert torch.equal(perm.sort(1).values, torch.arange(n).expand(200, n))
    assert not (perm == torch.arange(n)).any()
    if n >= 6:  # not always the same cycle: (n-1)! cycles exist
        assert len({tuple(p.tolist()) for p in perm}) > 50


def test_derangement_rejects_single_frame() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        L.derangement(1, 1, _rand())


def test_losses_vanish_exactly_at_the_ideal_factorization() -> None:
    torch.manual_seed(0)
    identity = torch.randn(3, 1, 4, 2, 2)  # per clip
    motion = torch.randn(3, 6, 4, 2, 2)
    motion = motion - motion.mean(1, keepdim=True)  # zero-mean over time
    z = identity + motion
    s, r = identity.expand_as(z), motion
    perm = L.derangement(6, 3, _rand())
    assert torch.allclose(L.source_structure(s, z), torch.zeros(3), atol=1e-6)
    assert torch.allclose(L.random_pair_reconstruction(s, r, z, perm), torch.zeros(3), atol=1e-6)
    # With E = 0 the structure read back is the whole mixed latent: it equals m' only if r = 0.
    zero = lambda x: torch.zeros_like(x)  # noqa: E731
    target = [1, 2, 0]
    assert L.target_structure(r, s[target], z[target], zero).min() > 0.1
    assert torch.allclose(
        L.target_structure(torch.zeros_like(r), s[target], z[target], zero),
        torch.zeros(3),
        atol=1e-6,
    )


def test_losses_detect_a_wrong_factorization() -> None:
    torch.manual_seed(1)
    z = torch.randn(2, 5, 3, 2, 2)
    perm = L.derangement(5, 2, _rand())
    # all motion put in s: source structure must complain
    assert L.source_structure(z, z).min() > 0.1
    # s that varies per frame breaks random-pair reconstruction
    assert L.random_pair_reconstruction(z, torch.zeros_like(z), z, perm).min() > 0.1


@pytest.mark.parametrize("kind", ["linear", "conv", "attention"])
def test_encoders_split_exactly_and_start_at_zero(kind: str) -> None:
    shapes = [(6, 8, 8), (12, 4, 4)]
    encs = build_encoders(kind, shapes, 8)
    z = torch.randn(3, 6, 8, 8)
    assert torch.equal(encs[0](z), torch.zeros_like(z))
    for p in encs.parameters():
        torch.nn.init.normal_(p, std=0.1)
    r = encs[0](z)
    assert r.shape == z.shape and r.abs().sum() > 0
    assert torch.allclose((z - r) + r, z, atol=1e-6)


def test_af_model_terms_gradients_and_reenactment_shapes(tiny_lrw: Path) -> None:
    cfg = load_config("tiny", ["model=af", "af.num_words=2"])
    model = build_model(cfg)
    frames = torch.randint(0, 256, (3, 4, 3, 16, 16), dtype=torch.uint8)
    batch = {"frames": frames, "word": torch.tensor([0, 1, 0]), "speaker": torch.zeros(3)}
    model.initialize(batch)
    for enc in model.encoders:
        torch.nn.init.normal_(enc.net[-1].weight, std=0.05)
    terms = model.losses(batch, BatchRandom.seeded(0))
    assert set(terms) >= {"source", "pair", "target", "cls", "objective"}
    assert all(v.shape == (3,) for v in terms.values())
    loss = sum(w * terms[k].mean() for k, w in model.loss_weights.items())
    loss.backward()
    assert all(p.grad is None for p in model.flow.parameters())  # frozen flow (thesis stage 2)
    assert all(p.grad is not None for p in model.encoders.parameters())
    out = model.reenact(frames[0], frames[1])
    assert out.shape == (4, 3, 16, 16) and out.dtype == torch.uint8
    # with r from the target itself and s from the same clip, decoding rebuilds that clip
    ss, rs = model.factorize(frames[1])
    zs = model.encode(frames[1])[0]
    for s, r, z in zip(ss, rs, zs, strict=True):
        assert torch.allclose(s + r, z, atol=1e-5)


def _af_batch(words: int = 2) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    model = build_model(load_config("tiny", ["model=af", f"af.num_words={words}"]))
    frames = torch.randint(0, 256, (3, 4, 3, 16, 16), dtype=torch.uint8)
    batch = {
        "frames": frames,
        "word": torch.tensor([0, 1, 0]),
        "speaker": torch.zeros(3),
        "index": torch.tensor([5, 2, 9]),
    }
    model.initialize(batch)
    for enc in model.encoders:
        torch.nn.init.normal_(enc.net[-1].weight, std=0.05)
    return model, batch


def test_cached_and_uncached_latents_give_the_same_losses() -> None:
    model, batch = _af_batch()
    model.train()
    cached = model.losses(batch, BatchRandom.seeded(3))
    again = model.losses(batch, BatchRandom.seeded(3))  # served from the cache this time
    plain = {k: v for k, v in batch.items() if k != "index"}  # no index: encoded afresh
    fresh = model.losses(plain, BatchRandom.seeded(3))
    assert set(model._latents) == {5, 2, 9}
    for key in fresh:
        assert torch.allclose(cached[key], fresh[key], atol=1e-6), key
        assert torch.equal(cached[key], again[key]), key


def test_latent_cache_is_bounded_least_recently_used_first() -> None:
    model, batch = _af_batch()
    model.cfg = dataclasses.replace(model.cfg, cache_clips=4)
    model.train()
    model.losses(batch, BatchRandom.seeded(0))
    moved = {**batch, "index": torch.tensor([7, 5, 8])}
    model.losses(moved, BatchRandom.seeded(0))
    assert list(model._latents) == [9, 7, 5, 8]  # 2 was used least recently


def test_two_stage_training_of_plain_af(tiny_lrw: Path, tmp_path: Path) -> None:
    """`train --model af` trains a Glow in RUN_DIR/stage1, then AF on its frozen flow."""
    run = tmp_path / "af"
    args = ["--data", str(tiny_lrw), "--out", str(run), "--config", "tiny", "--model", "af"]
    steps = ["--max-steps", "3", "--no-progress", "af.stage1_steps=4", "data.batch_size=2"]
    assert main(["train", *args, *steps]) == 0
    stage1, _ = load(run / "stage1")
    af, config = load(run)
    assert stage1.name == "glow" and af.name == "af"
    assert Path(config.af.glow_checkpoint).parent.parent == run / "stage1"
    assert config.af.num_words == 2  # filled from the training split's vocabulary
    for key, value in stage1.flow.state_dict().items():
        assert torch.equal(af.flow.state_dict()[key], value), key  # frozen in stage 2
