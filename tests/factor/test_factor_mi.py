"""MI-flow (condition, terms, reenactment) and the hybrid (AF on MI-flow latents)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from factorflow import checkpoint as ckpt
from factorflow.config import load_config, to_dict
from factorflow.factor.condition import ConditionNet, mouth_mask
from factorflow.flows.likelihood import bits_per_dim, dequantize, postprocess
from factorflow.models import BatchRandom, build_model
from factorflow.models.mi import mi_flow_config


def frames_of(*shape: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (*shape, 3, 16, 16), generator=gen, dtype=torch.uint8)


def quantised(frames: torch.Tensor) -> torch.Tensor:
    """What an exact encode-decode gives back: the frames at 5 bits (bin centres)."""
    return postprocess(dequantize(frames, 5, None), 5)


def randomise(module: torch.nn.Module, seed: int = 1, std: float = 0.05) -> None:
    """Give zero-initialised layers (priors, coupling outputs, AF encoders) non-zero weights: at
    zero they pass no gradient to the condition and hide wiring mistakes."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not p.abs().sum() and "actnorm" not in name.lower():
                p.copy_(std * torch.randn(p.shape, generator=gen))


def mi_model(*overrides: str):
    cfg = load_config("tiny", ["model=mi", *overrides])
    model = build_model(cfg)
    model.initialize({"image": frames_of(16)})
    randomise(model)
    return model, cfg


# -- the condition --------------------------------------------------------------------------


def test_mouth_mask_is_one_inside_zero_outside_with_a_monotone_feather() -> None:
    box = (0.25, 0.5, 0.75, 0.875)
    hard = mouth_mask(16, box, 0.0)[0, 0]
    assert hard[8:14, 4:12].eq(1).all() and hard.sum() == 6 * 8  # pixel centres inside the box
    soft = mouth_mask(64, box, 0.1)[0, 0]
    assert soft[40, 32] == 1 and soft[5, 5] == 0 and soft[40, 2] == 0
    row = soft[45]
    left = row[:32]
    assert (left[1:] >= left[:-1]).all() and 0 < left[14] < 1  # ramp around x0 = 16 px


def test_condition_shapes_per_level_and_nothing_outside_the_box_matters() -> None:
    cfg = load_config("tiny", ["model=mi"])
    flow_cfg = mi_flow_config(cfg)
    net = ConditionNet.from_config(cfg.mi, 16, 2)
    x = torch.rand(3, 3, 16, 16) - 0.5
    cond = net(x)
    assert [tuple(c.shape[1:]) for c in cond] == flow_cfg.cond_shapes == [(2, 8, 8), (2, 4, 4)]
    big = ConditionNet(64, 4, 5, 8, cfg.mi.mouth_box, cfg.mi.mouth_feather)
    sizes = [tuple(c.shape[1:]) for c in big(torch.zeros(1, 3, 64, 64))]
    assert sizes == [(5, 32, 32), (5, 16, 16), (5, 8, 8), (5, 4, 4)]
    outside = net.mask[0, 0] == 0
    changed = x.clone()
    changed[:, :, outside] = torch.rand_like(changed[:, :, outside]) - 0.5
    for a, b in zip(cond, net(changed), strict=True):
        assert torch.equal(a, b)
    inside = x.clone()
    inside[:, :, 12, 8] += 0.3
    assert not torch.equal(net(inside)[0], cond[0])


# -- MI-flow --------------------------------------------------------------------------------


@pytest.mark.parametrize("prior_cond", ["cond", "kept+cond"])
def test_mi_terms_are_finite_and_train_flow_condition_and_critics(prior_cond: str) -> None:
    model, _ = mi_model(f"mi.prior_cond={prior_cond}", "mi.w_infonce=0.1", "mi.w_club=0.1")
    batch = {"image": frames_of(6)}
    terms = model.losses(batch, BatchRandom.seeded(0))
    assert set(terms) == set(model.loss_weights) == {
        "bpd", "relevance", "infonce", "club", "club_q", "resample",
    }  # fmt: skip
    assert all(v.shape == (6,) and torch.isfinite(v).all() for v in terms.values())
    loss = sum(w * terms[k].mean() for k, w in model.loss_weights.items())
    loss.backward()
    parts = {"flow": model.flow, "condition": model.condition}
    parts.update(critic=model.objective.critic, club_q=model.objective.club_q)
    for name, part in parts.items():
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_club_terms_do_not_fight() -> None:
    model, _ = mi_model("mi.w_club=1.0")
    terms = model.losses({"image": frames_of(6)}, BatchRandom.seeded(0))
    terms["club"].sum().backward(retain_graph=True)
    q = list(model.objective.club_q.parameters())
    assert all(p.grad is None for p in q)  # the bound moves neither q nor the condition ...
    assert all(p.grad is None for p in model.condition.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.flow.parameters())
    model.zero_grad(set_to_none=True)
    terms["club_q"].sum().backward()
    assert all(p.grad is not None for p in q)  # ... and q's fit moves nothing else
    assert all(p.grad is None for p in [*model.flow.parameters(), *model.condition.parameters()])


def test_bits_per_dim_is_the_bpd_term_and_reads_the_condition() -> None:
    model, _ = mi_model("mi.w_resample=0")
    frames = frames_of(4)
    terms = model.losses({"image": frames}, BatchRandom.seeded(3))
    assert torch.allclose(model.bits_per_dim(frames, BatchRandom.seeded(3)), terms["bpd"])
    # the relevance term is the conditional priors' share, in bits per image dimension
    assert torch.all(terms["relevance"] > 0)
    x = dequantize(frames, 5, None)
    cond = model.condition(x)
    with torch.no_grad():
        log_prob = model.flow.log_prob(x, cond)
        blind = model.flow.log_prob(x, [torch.zeros_like(c) for c in cond])
    assert torch.allclose(model.bits_per_dim(frames), bits_per_dim(log_prob, 768, 5))
    assert (log_prob - blind).abs().min() > 1e-3
    glow = build_model(load_config("tiny", ["model=glow"]))
    glow.initialize({"image": frames_of(16)})
    bpd = glow.losses({"image": frames}, BatchRandom.seeded(3))["bpd"]
    assert torch.allclose(glow.bits_per_dim(frames, BatchRandom.seeded(3)), bpd)


@pytest.mark.parametrize("fine", ["driver", "prior"])
def test_mi_reenactment(fine: str) -> None:
    model, _ = mi_model(f"mi.fine_latents={fine}", "mi.coupling_cond=true")
    driver, target = frames_of(5, seed=1), frames_of(3, seed=2)
    out = model.reenact(driver, target)
    assert out.shape == (5, 3, 16, 16) and out.dtype == torch.uint8
    if fine == "driver":  # a frame that drives itself comes back
        same = model.reenact(driver[:1], driver[:1])
        assert torch.equal(same, quantised(driver[:1]))
    s, r = model.factorize(driver)
    assert [tuple(v.shape) for v in s + r] == [(5, 24, 4, 4), (5, 6, 8, 8)]
    previews = model.previews({"image": frames_of(8)})
    assert previews["reenact_driver_target_output"].shape == (3, 4, 3, 16, 16)
    assert previews["resample"].shape == (2, 8, 3, 16, 16)


def test_mi_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="mouth_region"):
        load_config("tiny", ["mi.mouth_region=landmarks"])
    with pytest.raises(ValueError, match="prior_cond"):
        load_config("tiny", ["mi.prior_cond=kept"])
    with pytest.raises(ValueError, match="0 <= x0 < x1 <= 1"):
        load_config("tiny", ["mi.mouth_x0=0.8"])


# -- hybrid ---------------------------------------------------------------------------------


def hybrid_model(*overrides: str):
    cfg = load_config("tiny", ["model=hybrid", "af.num_words=2", *overrides])
    model = build_model(cfg)
    model.initialize({"frames": frames_of(2, 4)})
    randomise(model, seed=2)
    return model


def clip_batch() -> dict:
    return {"frames": frames_of(3, 4), "word": torch.tensor([0, 1, 0]), "index": torch.arange(3)}


def test_hybrid_split_is_exact_and_the_top_level_is_all_structure() -> None:
    model = hybrid_model()
    frames = frames_of(4)
    zs = model.encode(frames).zs
    ss, rs = model.factorize(frames)
    for z, s, r in zip(zs, ss, rs, strict=True):
        assert torch.allclose(s + r, z, atol=1e-6)
    assert rs[0].abs().sum() > 0 and torch.equal(rs[-1], torch.zeros_like(zs[-1]))
    out = model.reenact(frames_of(5, seed=1), frames_of(3, seed=2))
    assert out.shape == (5, 3, 16, 16) and out.dtype == torch.uint8
    assert torch.equal(model.reenact(frames[:1], frames[:1]), quantised(frames[:1]))


def test_hybrid_stage2_keeps_flow_and_condition_frozen() -> None:
    model = hybrid_model()
    terms = model.losses(clip_batch(), BatchRandom.seeded(0))
    assert set(model.loss_weights) == {"source", "pair", "target", "cls"}
    sum(w * terms[k].mean() for k, w in model.loss_weights.items()).backward()
    frozen = [*model.flow.parameters(), *model.condition.parameters()]
    assert all(p.grad is None for p in frozen)
    assert not {id(p) for p in frozen} & {id(p) for p in model.trainable_parameters()}
    trained = [p for enc in model.encoders[:-1] for p in enc.parameters()]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)


def test_hybrid_joint_fine_tunes_flow_and_condition_with_the_mi_terms() -> None:
    model = hybrid_model("af.joint=true", "af.w_nll=0.5", "mi.w_infonce=0.1", "mi.beta=0.4")
    terms = model.losses(clip_batch(), BatchRandom.seeded(0))
    weights = model.loss_weights
    assert weights["bpd"] == 0.5 and weights["relevance"] == 0.5 * 0.4
    assert all(terms[k].shape == (3,) and torch.isfinite(terms[k]).all() for k in weights)
    sum(w * terms[k].mean() for k, w in weights.items()).backward()
    for part in (model.flow, model.condition, model.objective.critic):
        assert sum(float(p.grad.abs().sum()) for p in part.parameters()) > 0


def test_hybrid_loads_flow_and_condition_from_an_mi_checkpoint(tmp_path: Path) -> None:
    mi, cfg = mi_model()
    run = tmp_path / "mi_run"
    ckpt.save(run, 7, mi, None, to_dict(cfg))
    model = hybrid_model(f"af.glow_checkpoint={run}")
    assert not torch.equal(
        model.flow.split_priors[0].conv.weight, mi.flow.split_priors[0].conv.weight
    )
    model.load_pretrained()
    for mine, theirs in [(model.flow, mi.flow), (model.condition, mi.condition)]:
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    frames = frames_of(3)
    assert torch.allclose(model.bits_per_dim(frames), mi.bits_per_dim(frames))
    glow = build_model(load_config("tiny", ["model=glow"]))
    ckpt.save(tmp_path / "glow_run", 1, glow, None, to_dict(load_config("tiny", ["model=glow"])))
    wrong = hybrid_model(f"af.glow_checkpoint={tmp_path / 'glow_run'}")
    with pytest.raises(ValueError, match="holds a 'glow' model"):
        wrong.load_pretrained()


def test_train_hybrid_runs_both_stages(tiny_lrw: Path, tmp_path: Path) -> None:
    from factorflow.engine.pipeline import run_training

    cfg = load_config(
        "tiny",
        ["model=hybrid", "af.stage1_steps=3", "train.max_steps=2", "train.tensorboard=false"],
    )
    result = run_training(cfg, tiny_lrw, tmp_path / "run", progress=False)
    assert result.step == 2
    stage1 = ckpt.load(tmp_path / "run" / "stage1")
    stage2 = ckpt.load(tmp_path / "run")
    assert stage1.config["model"] == "mi" and stage1.step == 3
    assert stage2.config["af"]["glow_checkpoint"] == str(stage1.path)
    for name, value in stage1.model.items():  # the frozen MI-flow is carried over unchanged
        if name.startswith(("flow.", "condition.")):
            assert torch.equal(stage2.model[name], value), name
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())


@pytest.mark.parametrize("kind", ["af", "hybrid"])
def test_residual_motion_adds_the_drivers_structure_change(kind: str) -> None:
    model = hybrid_model("af.motion=residual")
    if kind == "af":
        model = build_model(
            load_config("tiny", ["model=af", "af.num_words=2", "af.motion=residual"])
        )
        model.initialize({"frames": frames_of(2, 4)})
        randomise(model, seed=2)
    driver, target = frames_of(6, seed=1), frames_of(3, seed=2)
    ss, rs = model.factorize(driver)
    ident = model.identity(target)
    zs = [m + r + s - s.mean(0, keepdim=True) for m, s, r in zip(ident, ss, rs, strict=True)]
    out = model.reenact(driver, target)
    if kind == "af":
        expected = model.decode(zs)
    else:
        expected = model.render(ident, model.motion(driver))
        x, _ = model.flow.inverse(zs, model.motion(driver).cond)
        assert torch.equal(expected, postprocess(x, 5))
    assert torch.equal(out, expected)
    # the structure mean is the whole driver's, however reenactment chunks the frames
    assert torch.equal(model.reenact(driver, target, batch_size=4), out)
    # a driver that does not move has no structure change: residual motion is plain r
    still = driver[:1].expand(4, -1, -1, -1).contiguous()
    residual = model.reenact(still, target)
    model.cfg = dataclasses.replace(model.cfg, motion="r")
    assert torch.equal(model.reenact(still, target), residual)
    assert not torch.equal(model.reenact(driver, target), out)
