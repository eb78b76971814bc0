"""`factorflow sample`: prior samples, and controlled generation on a target face."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from factorflow import checkpoint as ckpt
from factorflow.cli.main import main
from factorflow.config import load_config, to_dict
from factorflow.models import build_model


def _checkpoint(run: Path, name: str) -> Path:
    config = load_config(
        "tiny", [f"model={name}", "af.num_words=2", "mc.num_speakers=4", "data.frames=8"]
    )
    torch.manual_seed(0)
    model = build_model(config)
    frames = torch.randint(0, 256, (2, 8, 3, 16, 16), dtype=torch.uint8)
    if model.batch_kind == "frames":
        model.initialize({"image": frames.flatten(0, 1)})
    else:
        model.initialize({"frames": frames})
    if name == "motioncode":  # a fresh decoder draws (almost) no change
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.normal_(0, 0.3)
    ckpt.save(run, 1, model, torch.optim.Adam(model.parameters()), to_dict(config))
    return run


@pytest.fixture(scope="module")
def mc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("mc") / "run", "motioncode")


def test_prior_samples_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _checkpoint(tmp_path / "run", "glow")
    out = tmp_path / "grid.png"
    args = ["sample", "--checkpoint", str(run), "--out", str(out), "--n", "4"]
    assert main(args) == 0 and Image.open(out).size == (2 * 17 + 1, 2 * 17 + 1)
    assert main(args) == 2 and "--force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0


def test_traverse_writes_a_grid_and_a_gif_and_keeps_its_stats(
    tiny_lrw: Path, mc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tiny_lrw / "val" / "ABOUT" / "ABOUT_00000"
    out, stats = tmp_path / "trav.png", tmp_path / "stats"
    base = ["sample", "--checkpoint", str(mc_run), "--mode", "traverse", "--target", str(target)]
    args = [*base, "--data", str(tiny_lrw), "--stats", str(stats), "--out", str(out)]
    assert main([*args, "--directions", "2", "--steps", "5"]) == 0
    assert Image.open(out).size == (5 * 17 + 1, 2 * 17 + 1)
    gif = Image.open(out.with_suffix(".gif"))
    assert gif.n_frames == 8 and gif.size == (2 * 17 - 1, 16)
    assert (stats / "stats.json").exists() and (stats / "stats.safetensors").exists()
    assert main(args) == 2  # existing outputs are kept
    err = capsys.readouterr().err.strip()
    assert "--force" in err and len(err.splitlines()) == 1
    # the stored stats serve without --data
    assert main([*base, "--stats", str(stats), "--out", str(tmp_path / "again.png")]) == 0


def test_word_writes_a_clip_and_unknown_words_are_one_line_errors(
    tiny_lrw: Path, mc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tiny_lrw / "val" / "BELOW" / "BELOW_00001"
    base = ["sample", "--checkpoint", str(mc_run), "--mode", "word", "--target", str(target)]
    base += ["--data", str(tiny_lrw), "--frame", "3"]
    out = tmp_path / "below.gif"
    assert main([*base, "--word", "below", "--out", str(out)]) == 0
    assert Image.open(out).n_frames == 8
    assert main([*base, "--word", "below", "--out", str(out)]) == 2
    capsys.readouterr()
    assert main([*base, "--word", "ZEBRA", "--out", str(tmp_path / "z.gif")]) == 2
    err = capsys.readouterr().err.strip()
    assert "ZEBRA" in err and "ABOUT" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "z.gif").exists()
    assert main([*base, "--word", "below", "--gain", "lots", "--out", str(tmp_path / "g.gif")]) == 2
    assert "--gain lots" in capsys.readouterr().err
    args = [*base, "--word", "below", "--frame", "99", "--out", str(tmp_path / "f.gif")]
    assert main(args) == 2
    assert "--frame 99" in capsys.readouterr().err


def test_a_missing_target_or_data_is_a_one_line_error(
    tiny_lrw: Path, mc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["sample", "--checkpoint", str(mc_run), "--mode", "traverse", "--out"]
    missing = tmp_path / "nobody.png"
    assert main([*base, str(tmp_path / "a.png"), "--target", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and "does not exist" in err and len(err.splitlines()) == 1
    target = tiny_lrw / "val" / "ABOUT" / "ABOUT_00000"
    assert main([*base, str(tmp_path / "a.png"), "--target", str(target)]) == 2
    assert "--data" in capsys.readouterr().err
    nodata = tmp_path / "nodata"
    args = [*base, str(tmp_path / "a.png"), "--target", str(target), "--data", str(nodata)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert str(nodata) in err and len(err.splitlines()) == 1


def test_draw_from_the_conditional_prior(
    tiny_lrw: Path, mc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _checkpoint(tmp_path / "mi", "mi")
    target = tiny_lrw / "val" / "ABOUT" / "ABOUT_00000"
    condition = tiny_lrw / "val" / "BELOW" / "BELOW_00001"
    args = ["--mode", "draw", "--target", str(target), "--condition", str(condition), "--n", "3"]
    out = tmp_path / "draws.png"
    assert main(["sample", "--checkpoint", str(run), *args, "--out", str(out)]) == 0
    assert Image.open(out).size == (4 * 17 + 1, 8 * 17 + 1)  # 8 condition frames, 1 + 3 columns
    assert main(["sample", "--checkpoint", str(mc_run), *args, "--out", str(tmp_path / "m.png")])
    err = capsys.readouterr().err.strip()
    assert "motioncode model has no conditional prior" in err and len(err.splitlines()) == 1
