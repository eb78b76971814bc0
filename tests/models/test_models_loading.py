"""`factorflow.models.load`: use-time overrides only, filled-in keys named, shipped assets load."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from factorflow import checkpoint as ckpt
from factorflow.config import load_config, to_dict
from factorflow.models import build_model, load

ASSETS = Path(__file__).parents[2] / "src" / "factorflow" / "assets"


def _saved(tmp_path: Path, model: str) -> torch.nn.Module:
    cfg = load_config("tiny", [f"model={model}"])
    net = build_model(cfg)
    ckpt.save(tmp_path, 1, net, torch.optim.Adam(net.parameters()), to_dict(cfg))
    return net


def test_load_takes_use_time_overrides_only(tmp_path: Path) -> None:
    model = _saved(tmp_path, "mi")
    loaded, config = load(tmp_path, ["mi.fine_latents=prior"])
    assert config.mi.fine_latents == "prior" and loaded.cfg.fine_latents == "prior"
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(ValueError, match=r"flow.steps.*cannot change after training"):
        load(tmp_path, ["flow.steps=3"])


def test_keys_missing_from_an_old_checkpoint_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _saved(tmp_path, "af")
    state = next((tmp_path / "checkpoints").glob("step_*")) / "state.json"
    data = json.loads(state.read_text())
    del data["config"]["af"]["motion"]
    state.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        _, config = load(tmp_path)
    assert config.af.motion == "r"
    assert "af.motion='r'" in caplog.text and "today's defaults" in caplog.text


def test_unknown_keys_in_a_checkpoint_are_refused(tmp_path: Path) -> None:
    _saved(tmp_path, "glow")
    state = next((tmp_path / "checkpoints").glob("step_*")) / "state.json"
    data = json.loads(state.read_text())
    data["config"]["flow"]["wings"] = 2
    state.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="unknown config key 'flow.wings'"):
        load(tmp_path)


@pytest.mark.parametrize("name", sorted(p.name for p in ASSETS.iterdir() if p.is_dir()))
def test_every_shipped_asset_loads_complete_and_reenacts(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        model, config = load(ASSETS / name)
    assert "today's defaults" not in caplog.text  # every key is in the shipped config
    assert model.image_size == config.flow.image_size == 64
    frames = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    out = model.reenact(frames, frames[:1])
    assert out.shape == frames.shape and out.dtype == torch.uint8
