"""The app's handlers without a browser: reenactment of real clips with the shipped real-face AF
model (the 64x64 path; the mouth flow is in test_app_mouthflow), the sources it offers, and the
benchmark on a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from factorflow.app import run as app_run
from factorflow.app.run import RunRequest, figures_markdown, motion_overrides, run_reenactment
from factorflow.app.settings import AppSettings
from factorflow.app.sources import ASSETS, ModelCache, examples, model_choices
from factorflow.app.validate import InputError

REAL_AF = ASSETS / "real-af"


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


def test_reenact_a_still_with_a_real_clip(media, models, tmp_path: Path) -> None:
    from factorflow.data.video_io import read_video

    calls: list[tuple[float, str]] = []
    request = RunRequest(media["target"], media["driver"], REAL_AF, motion="residual")
    result = run_reenactment(
        request, AppSettings(workdir=tmp_path), models, lambda f, what: calls.append((f, what))
    )
    frames, _ = read_video(result.download)
    assert result.download == result.video and result.video.suffix == ".mp4"
    assert result.video.name == "grace_hopper_says_carphone8.mp4"
    assert frames.shape[0] == media["frames"] == result.frames
    assert frames.shape[1:3] == (600, 512)  # the target's own frame size: the mouth pasted back
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    said = {what.split(" (")[0] for _, what in calls}
    assert set(app_run.STAGES) <= said
    assert {"opening_corr", "output_opening_range"} <= set(result.metrics)
    assert result.driver_opening.shape == result.output_opening.shape == (media["frames"],)
    assert np.isfinite(result.driver_opening).all()
    assert result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = figures_markdown(result)
    assert "mouth opening correlation" in table and f"{len(frames)} frames" in table


def test_gif_and_side_by_side(media, models, tmp_path: Path) -> None:
    from factorflow.data.video_io import read_video

    request = RunRequest(media["target"], media["driver"], REAL_AF, side_by_side=True, fmt="gif")
    result = run_reenactment(request, AppSettings(workdir=tmp_path), models)
    assert result.download.suffix == ".gif" and result.video.suffix == ".mp4"
    gif, _ = read_video(result.download)
    mp4, _ = read_video(result.video)
    assert len(gif) == len(mp4) == media["frames"]
    assert mp4.shape[2] > 2 * 512  # driver | target | result


def test_a_clip_without_a_face_is_named(media, models, tmp_path: Path) -> None:
    from factorflow.data.video_io import write_video

    noise = np.random.default_rng(0).integers(0, 255, (4, 144, 176, 3), dtype=np.uint8)
    write_video(tmp_path / "static.mp4", noise, 25.0)
    request = RunRequest(media["target"], tmp_path / "static.mp4", REAL_AF)
    with pytest.raises(InputError, match=r"no face found in driver .*static\.mp4"):
        run_reenactment(request, AppSettings(workdir=tmp_path), models)


def test_bad_options_are_input_errors(media, models, tmp_path: Path) -> None:
    settings = AppSettings(workdir=tmp_path)
    with pytest.raises(InputError, match="format 'avi'"):
        run_reenactment(
            RunRequest(media["target"], media["driver"], REAL_AF, fmt="avi"), settings, models
        )
    with pytest.raises(InputError, match="motion 'up'"):
        motion_overrides(REAL_AF, "up")
    assert motion_overrides(REAL_AF, "r") == ("af.motion=r",)


def test_a_model_without_motion_modes(tmp_path: Path) -> None:
    from factorflow import checkpoint as ckpt
    from factorflow.config import load_config, to_dict
    from factorflow.models import build_model

    config = load_config("tiny", ["model=glow"])
    net = build_model(config)
    ckpt.save(tmp_path, 1, net, None, to_dict(config))
    assert motion_overrides(tmp_path, "r") == ()
    with pytest.raises(InputError, match="takes no motion mode"):
        motion_overrides(tmp_path, "residual")


def test_sources(tmp_path: Path) -> None:
    choices = model_choices()
    assert [p.name for p in choices.values()] == ["mouthflow", "real-af", "demo-af"]
    with pytest.raises(FileNotFoundError, match="nothing"):
        model_choices([tmp_path / "nothing"])
    for example in examples():
        assert example.target.is_file() and example.driver.is_file()
    cache = ModelCache(keep=1)
    first = cache.get(REAL_AF)
    assert cache.get(REAL_AF) is first
    assert cache.get(REAL_AF, ("af.motion=residual",))[1].af.motion == "residual"
    assert cache.get(REAL_AF) is not first  # only one kept


def test_benchmark_on_a_tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from factorflow import checkpoint as ckpt
    from factorflow.app.benchmark import run_benchmark
    from factorflow.config import load_config, to_dict
    from factorflow.data.synth import SynthMeta, generate
    from factorflow.flows.likelihood import dequantize
    from factorflow.metrics.clips import load_clips
    from factorflow.models import build_model

    data = tmp_path / "data"
    generate(data, size=16, frames=8, speakers=8, words=3, clips_per_pair=2, seed=1)
    torch.manual_seed(0)
    config = load_config("tiny", ["model=af"])
    net = build_model(config)
    frames = load_clips(SynthMeta.load(data), "train").frames.flatten(0, 1)[:32]
    net.flow.initialize(dequantize(frames, config.flow.n_bits, None))
    ckpt.save(tmp_path / "run", 1, net, None, to_dict(config))
    settings = AppSettings(workdir=tmp_path / "work")
    # The information estimates take most of evaluate's time; tests/metrics covers them.
    monkeypatch.setattr("factorflow.metrics.evaluate.leakage", lambda *a: {})
    monkeypatch.setattr("factorflow.metrics.evaluate.information", lambda *a: {})
    fast = {"judge_steps": 20, "word_steps": 20, "likelihood_frames": 16, "noise_draws": 1}
    said: list[tuple[float, str]] = []
    result = run_benchmark(
        tmp_path / "run",
        data,
        4,
        ["copy-target"],
        settings,
        progress=lambda f, w: said.append((f, w)),
        **fast,
    )
    assert any("training the judges" in what for _, what in said)  # evaluate's own steps
    assert [f for f, _ in said] == sorted(f for f, _ in said) and said[-1] == (1.0, "done")
    assert "| af |" in result.markdown and "| copy-target |" in result.markdown
    assert result.sheet.read_bytes()[:4] == b"\x89PNG" and result.report.is_file()
    assert set(result.summary) >= {"psnr_mask", "word_accuracy_ratio", "opening_corr"}
    with pytest.raises(InputError, match="pairs=0"):
        run_benchmark(tmp_path / "run", data, 0, [], settings)
    with pytest.raises(InputError, match="not a `factorflow synth` dataset"):
        run_benchmark(tmp_path / "run", tmp_path, 2, [], settings)


def test_output_folders_are_pruned(tmp_path: Path) -> None:
    made = [app_run.new_output_dir(tmp_path, "run", keep=3) for _ in range(5)]
    assert sorted(tmp_path.iterdir()) == sorted(made[-3:])
    (tmp_path / "synth64").mkdir()
    app_run.new_output_dir(tmp_path, "run", keep=3)
    assert (tmp_path / "synth64").is_dir()
