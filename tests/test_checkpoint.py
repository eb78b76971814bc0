from pathlib import Path

import pytest
import torch

from factorflow import checkpoint as ckpt
from factorflow.config import load_config, to_dict
from factorflow.models import build_model


def _model_and_opt():
    cfg = load_config("tiny")
    model = build_model(cfg)
    model.flow.initialize(torch.rand(4, 3, 16, 16) - 0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = model.flow.log_prob(torch.rand(4, 3, 16, 16) - 0.5).mean()
    loss.backward()
    opt.step()
    return cfg, model, opt


def test_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    cfg, model, opt = _model_and_opt()
    torch.manual_seed(123)
    path = ckpt.save(tmp_path, 7, model, opt, to_dict(cfg), {"bpd": 3.0})
    expected_next = torch.rand(3)
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))
    state = ckpt.load(tmp_path, optimizer=True)
    assert state.path == path and state.step == 7 and state.config["model"] == "glow"
    fresh = build_model(cfg)
    ckpt.load_model_state(fresh, state.model, state.path)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    opt2 = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    ckpt.restore_optimizer(opt2, state, torch.device("cpu"))
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert torch.equal(s1[0]["exp_avg"], s2[0]["exp_avg"])
    ckpt.restore_rng(state.optimizer, state.state["rng"])
    assert torch.equal(torch.rand(3), expected_next)


def test_keep_last_and_best_are_kept(tmp_path: Path) -> None:
    cfg, model, opt = _model_and_opt()
    for step in (1, 2, 3, 4, 5):
        if step == 2:
            ckpt.mark_best(tmp_path, 2, "bpd", 1.0)
        ckpt.save(tmp_path, step, model, opt, to_dict(cfg), keep_last=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert names == ["step_00000002", "step_00000004", "step_00000005"]
    assert ckpt.resolve(tmp_path, prefer_best=True).name == "step_00000002"
    assert ckpt.resolve(tmp_path).name == "step_00000005"


def test_checkpoint_of_another_config_is_a_clear_error(tmp_path: Path) -> None:
    cfg, model, opt = _model_and_opt()
    ckpt.save(tmp_path, 1, model, opt, to_dict(cfg))
    other = build_model(load_config("tiny", ["flow.hidden=8"]))
    with pytest.raises(ValueError, match="does not match this model's config"):
        ckpt.load_model_state(other, ckpt.load(tmp_path).model, tmp_path)


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.load(tmp_path)
