from pathlib import Path

import pytest

from factorflow.config import load_config, parse_overrides, preset_names, save_config


def test_presets_load_and_match_their_scale() -> None:
    assert {"tiny", "cpu-small", "paper"} <= set(preset_names())
    paper = load_config("paper")
    assert (paper.flow.levels, paper.flow.steps, paper.flow.hidden) == (4, 32, 512)
    assert paper.flow.coupling == "additive" and paper.flow.conv == "lu"
    assert paper.flow.n_bits == 5 and paper.train.lr == pytest.approx(1e-4)
    assert load_config("tiny").data.size == 16


def test_unknown_key_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="train.lrr"):
        load_config("tiny", ["train.lrr=1"])
    with pytest.raises(ValueError, match="unknown preset"):
        load_config("no-such-preset")


def test_overrides_are_typed() -> None:
    cfg = load_config("tiny", ["train.lr=1e-4", "af.joint=true", "flow.levels=3"])
    assert cfg.train.lr == pytest.approx(1e-4) and cfg.af.joint is True and cfg.flow.levels == 3
    cfg = load_config("tiny", ["af.joint=false"])
    assert cfg.af.joint is False
    with pytest.raises(ValueError, match="flow.levels"):
        load_config("tiny", ["flow.levels=two"])
    assert parse_overrides(["a.b=1"]) == {"a": {"b": 1}}
    with pytest.raises(ValueError):
        parse_overrides(["nokey"])


def test_size_mismatch_and_saved_config_round_trip(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size"):
        load_config("tiny", ["data.size=32"])
    cfg = load_config("tiny", ["flow.image_size=32"])
    assert cfg.data.size == 32
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(str(tmp_path / "c.yaml")) == cfg
