import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import factorflow.metrics.evaluate as ev
from factorflow import checkpoint as ckpt
from factorflow.cli.main import main
from factorflow.config import load_config, to_dict
from factorflow.data.synth import SynthMeta, generate
from factorflow.flows.likelihood import dequantize
from factorflow.metrics import bootstrap
from factorflow.metrics.clips import default_pairs, load_clips, make_pairs
from factorflow.metrics.judges import train_judges
from factorflow.metrics.scoring import CI, IMAGE_METRICS, PSNR_CAP, pair_statistics, summarize
from factorflow.models import build_model

FAST = {"judge_steps": 100, "word_steps": 200, "likelihood_frames": 32, "attribute_clips": 16}
FIGURES = {*IMAGE_METRICS, "word_accuracy", "word_accuracy_ratio", "opening_corr"}
ROW_KEYS = FIGURES | {f"{k}{CI}" for k in FIGURES}
JUDGED = {"word_accuracy", "word_accuracy_ratio", "opening_corr"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, size=16, frames=8, speakers=8, words=3, clips_per_pair=2, seed=1)
    return root


@pytest.fixture(scope="module")
def model_and_config(tiny: Path):
    torch.manual_seed(0)
    config = load_config("tiny")
    model = build_model(config)
    frames = load_clips(SynthMeta.load(tiny), "train").frames.flatten(0, 1)[:32]
    model.flow.initialize(dequantize(frames, config.flow.n_bits, None))
    return model.eval(), config


def _strict(text: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_pairs_are_deterministic_and_cross_speaker(tiny: Path):
    clips = SynthMeta.load(tiny).clips("test")
    pairs = make_pairs(clips, 10, seed=4)
    assert pairs == make_pairs(clips, 10, seed=4)
    assert pairs != make_pairs(clips, 10, seed=5)
    assert len(set(pairs)) == 10
    assert all(clips[t].speaker != clips[d].speaker for t, d in pairs)
    with pytest.raises(ValueError, match="pairs=1000"):
        make_pairs(clips, 1000)


def test_default_pairs_drive_with_every_test_clip(tiny: Path):
    clips = SynthMeta.load(tiny).clips("test")  # 12 clips of 2 speakers: 72 cross pairs
    pairs = make_pairs(clips, None, seed=0)
    assert len(pairs) == default_pairs(clips) == 72  # all there are, short of MIN_PAIRS
    assert len(set(pairs)) == 72
    once = make_pairs(clips, len(clips), seed=0)
    assert sorted(d for _, d in once) == list(range(len(clips)))  # each clip drives once
    assert all(clips[t].speaker != clips[d].speaker for t, d in once)


def test_ground_truth_scores_perfectly(tiny: Path, model_and_config):
    meta = SynthMeta.load(tiny)
    test = load_clips(meta, "test")
    judges = train_judges(test, test, len(meta.words), steps=5, word_steps=5, seed=0)
    stats = pair_statistics(
        test.frames[:2],
        test.frames[:2],
        test.masks[:2],
        test.words[:2],
        test.mouth[:2, :, 0],
        judges,
    )
    scores = summarize(stats, judges)
    assert scores["psnr"] == scores["psnr_mask"] == scores["psnr_outside"] == PSNR_CAP
    assert scores["ssim"] == pytest.approx(1.0) and scores["ssim_mask"] == pytest.approx(1.0)
    # identical frames on every pair: every image interval has zero width
    counts = bootstrap.resample_counts(2, 50)
    scored = summarize(stats, judges, counts)
    assert scored["psnr_mask_ci95"] == [PSNR_CAP, PSNR_CAP]
    assert scored["ssim_mask_ci95"] == pytest.approx([1.0, 1.0])


def test_evaluate_end_to_end(tiny: Path, model_and_config, tmp_path: Path):
    out = tmp_path / "REPORT.json"
    report = ev.evaluate(model_and_config, tiny, pairs=8, seed=0, out=out, **FAST)
    saved = _strict(out.read_text())
    assert saved["format"] == ev.FORMAT and saved["pairs"] == 8 and len(saved["pair_list"]) == 8
    assert saved["files"] == [str(out), str(out.with_suffix(".md")), str(out.with_suffix(".png"))]

    methods = saved["methods"]
    assert list(methods) == [
        "glow", "copy-target", "pixel-paste", "glow-attribute", "glow-residual", "ground-truth"
    ]  # fmt: skip
    assert "glow-swap" in saved["skipped"]  # the evaluated model is that Glow
    for name, row in methods.items():
        if name == "ground-truth":
            assert set(row) == JUDGED | {f"{k}{CI}" for k in JUDGED}
        else:
            assert set(row) == ROW_KEYS | {"frames_per_s"}
            assert row["frames_per_s"] > 0
            for key in ("psnr_mask", "ssim_mask", "word_accuracy_ratio"):
                low, high = row[f"{key}{CI}"]
                assert low <= row[key] <= high
    versus = saved["versus_copy_target"]
    assert set(versus) == {"glow", "pixel-paste", "glow-attribute", "glow-residual"}
    low, high = versus["glow"]["psnr_mask_ci95"]
    assert low <= versus["glow"]["psnr_mask"] <= high
    assert versus["glow"]["psnr_mask"] == pytest.approx(
        methods["glow"]["psnr_mask"] - methods["copy-target"]["psnr_mask"]
    )
    assert saved["bootstrap"]["over"] == "pairs"
    copy, paste = methods["copy-target"], methods["pixel-paste"]
    # copy-target is the target itself: outside the mouth it is (nearly) exact
    assert copy["psnr_outside"] > 40 and copy["ssim_outside"] > 0.98
    assert copy["psnr_mask"] < copy["psnr_outside"]
    # pixel paste only touches the mouth's surroundings (at 16 px SSIM's window spans the face)
    assert paste["psnr_outside"] > methods["glow"]["psnr_outside"]
    assert paste["ssim_outside"] > max(0.75, methods["glow"]["ssim_outside"])

    leak = saved["leakage"]["glow"]
    assert leak["chance_speaker"] == 0.5 and leak["chance_word"] == pytest.approx(1 / 3)
    assert 0 <= leak["speaker_from_r"] <= 1
    for key in ("mi_r_word", "mi_s_speaker", "mi_r_speaker", "mi_s_word"):
        assert 0 <= leak[key] <= math.log(128)  # InfoNCE is capped at log(batch)
    assert leak["mi_ceiling_speaker"] == pytest.approx(math.log(2))
    truth = saved["leakage"][ev.TRUE_MOUTH]
    assert set(truth) == {"mi_r_word", "mi_r_speaker", "mi_ceiling_word", "mi_ceiling_speaker"}
    like = saved["likelihood"]
    assert like["encode_decode_max_abs_error"] < 1e-4
    assert like["encode_decode_uint8_mismatches"] == 0
    assert 0 < like["bpd_bin_centre"] < 8 and 0 < like["bpd_noise"] < 8
    assert saved["judges"]["test_clips"] == 12

    md = out.with_suffix(".md").read_text()
    assert "## Information" in md and "mi_r_word" in md and "## Against copy-target" in md
    copy_row = methods["copy-target"]
    psnr, (low, high) = copy_row["psnr_mask"], copy_row["psnr_mask_ci95"]
    assert f"{psnr:.1f} [{low:.1f}, {high:.1f}]" in md
    for name in [*methods, "glow-swap"]:
        assert f"| {name} |" in md
    sheet = np.asarray(Image.open(out.with_suffix(".png")))
    tile = 16 * (128 // 16)
    assert sheet.shape[1] == (3 + 5) * tile  # driver, target, truth + 5 methods
    for key, value in methods["copy-target"].items():
        assert report["methods"]["copy-target"][key] == pytest.approx(value)


def test_cli_evaluates_a_checkpoint(
    tiny: Path, model_and_config, tmp_path: Path, monkeypatch, capsys
):
    model, config = model_and_config
    run = tmp_path / "run"
    ckpt.save(run, 1, model, None, to_dict(config))
    fast = functools.partial(ev.evaluate, **FAST)
    monkeypatch.setattr(ev, "evaluate", fast)
    out = tmp_path / "eval" / "REPORT.json"
    args = ["evaluate", "--checkpoint", str(run), "--data", str(tiny), "--out", str(out)]
    assert main([*args, "--pairs", "4", "--baselines", "copy-target"]) == 0
    report = _strict(out.read_text())
    assert list(report["methods"]) == ["glow", "copy-target", "ground-truth"]
    assert report["checkpoint"] == str(run)
    assert "evaluated glow on 4 test pairs" in capsys.readouterr().out

    assert main([*args[:-1], str(tmp_path / "report.txt")]) == 2
    assert main([*args, "--baselines", "nonsense", "--force"]) == 2
    assert "unknown baselines ['nonsense']" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["af", "mi"])
def test_factorized_and_conditional_models(tiny: Path, name: str):
    config = load_config("tiny", {"model": name, "af": {"num_words": 3}})
    torch.manual_seed(0)
    model = build_model(config)
    train = load_clips(SynthMeta.load(tiny), "train")
    if model.batch_kind == "frames":
        model.initialize({"image": train.frames.flatten(0, 1)[:32]})
    else:
        model.initialize({"frames": train.frames[:4]})
    fast = {**FAST, "judge_steps": 20, "word_steps": 20}
    report = ev.evaluate((model.eval(), config), tiny, pairs=4, **fast)
    like = report["likelihood"]
    assert like["encode_decode_max_abs_error"] < 1e-4
    if name == "mi":  # a conditional flow: no plain Glow to swap levels of
        assert like["conditional"]
        assert set(report["skipped"]) == {"glow-swap", "glow-attribute", "glow-residual"}
        assert list(report["leakage"]) == ["mi", ev.TRUE_MOUTH]
    else:  # AF runs on a plain Glow: its level swap is a baseline and is probed too
        assert not like["conditional"] and not report["skipped"]
        assert list(report["leakage"]) == ["af", "glow-swap", ev.TRUE_MOUTH]
        assert report["leakage"]["af"]["dims_r"] == report["leakage"]["af"]["dims_s"]
