"""`evaluate`: the metrics and baselines of EVALUATION.md on a synthetic dataset's test split.

1. Judges are trained on the fly from the real training clips (`metrics.classifiers`): a mouth
   regressor (its `opening` output measures mouth opening) and a lip-reading word classifier.
2. `pairs` (target clip, driver clip) pairs of test clips with different speakers (held-out people)
   are drawn from the seed. Every method reenacts every pair and is scored against the generator's
   ground truth `render_reenactment(target, driver)`: PSNR and SSIM over the frame, inside the
   ground truth's mouth mask and outside it; word accuracy of the outputs (label: the driver's
   word) as a ratio to the classifier's accuracy on the real test clips; Pearson correlation of
   the driver's true mouth opening with the opening read from the output, over all frames of all
   pairs; frames per second. A "ground-truth" row scores the true renders with the same judges:
   the ceiling the judges allow.
3. Leakage probes (`metrics.leakage`) on all test clips for the model (and the flow's level swap):
   linear read-outs, and InfoNCE estimates of I(r; word), I(s; speaker), I(r; speaker), I(s; word)
   per frame, with the generator's true mouth factors as a reference r (a single frame says
   little about the word: I(true mouth; word) is about 0.3-0.4 nats of H(word) = 2.08 at 8 words).
4. Bits/dim of test frames under the model's flow (bin centre, and averaged over uniform
   dequantisation noise) and the encode-decode error.

One concern per module: `clips` (splits and pairs), `judges` (judges and ground truth), `methods`
(the model and the baselines, run on every pair), `scoring` (figures, intervals, paired
differences), `likelihood`, `sheet` (contact sheet) and `report` (JSON and Markdown).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from factorflow.config import Config
from factorflow.data.synth import SynthMeta
from factorflow.metrics import bootstrap
from factorflow.metrics.clips import ClipSet, clip_name, load_clips, make_pairs
from factorflow.metrics.judges import OPENING, Judges, render_truth, train_judges
from factorflow.metrics.leakage import information, leakage
from factorflow.metrics.likelihood import held_out_likelihood
from factorflow.metrics.methods import (
    Method,
    baseline_methods,
    on_device,
    reenact_pairs,
    select_baselines,
)
from factorflow.metrics.report import report_paths, write_report
from factorflow.metrics.scoring import PSNR_CAP, score_methods
from factorflow.metrics.sheet import contact_sheet
from factorflow.models.base import FlowModel
from factorflow.runtime import torch_threads

__all__ = ["FORMAT", "TRUE_MOUTH", "evaluate"]

log = logging.getLogger(__name__)

FORMAT = "factorflow-evaluation/1"
TRUE_MOUTH = "true mouth factors (as r)"


def evaluate(
    checkpoint_or_model: str | Path | tuple[FlowModel, Config],
    data_dir: str | Path,
    baselines: str | list[str] | tuple[str, ...] = "all",
    pairs: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    out: str | Path | None = None,
    judge_steps: int = 600,
    word_steps: int = 1500,
    likelihood_frames: int = 256,
    noise_draws: int = 2,
    attribute_clips: int = 128,
    sheet_pairs: int = 3,
    overrides: list[str] | None = None,
    bootstrap_draws: int = bootstrap.DRAWS,
) -> dict[str, Any]:
    """Evaluate a trained model (run folder, checkpoint folder, or an in-memory (model, config))
    on the synthetic dataset at `data_dir` -> the report dict (format `FORMAT`).

    `pairs`: (target, driver) pairs of held-out clips; None = every test clip as a driver, at
    least `clips.MIN_PAIRS` (`clips.default_pairs`). Every per-pair figure gets a 95% bootstrap
    interval over pairs (`bootstrap_draws` resamples, seeded by `seed`) under KEY_ci95.
    `baselines`: "all", "none", or names from `baselines.BASELINES` (list or comma-separated).
    With `out` (a .json path) the report is also written there, with OUT.md (tables) and OUT.png
    (contact sheet: driver | target | ground truth | each method, a few frames of `sheet_pairs`
    pairs), and lists them under "files". `overrides`: use-time config keys for a checkpoint
    (the model's registry `use_time_keys`, e.g. "mi.fine_latents=prior").
    """
    chosen = select_baselines(baselines)
    meta = SynthMeta.load(data_dir)
    pair_list = make_pairs(meta.clips("test"), pairs, seed)
    model, config, source, run_dir = _load_model(checkpoint_or_model, device, overrides)
    _check_size(meta, model, data_dir)
    train, test, judges = _clips_and_judges(meta, judge_steps, word_steps, seed)
    methods, skipped, view = _methods(model, config, chosen, train, attribute_clips)
    truth = render_truth(meta, test, pair_list)
    outputs, seconds = reenact_pairs(methods, test, pair_list)
    counts = bootstrap.resample_counts(len(pair_list), bootstrap_draws, seed)
    results, versus = score_methods(outputs, seconds, truth, judges, counts)
    probed = {config.model: model, **({"glow-swap": view} if "glow-swap" in methods else {})}
    leaks = _leakage(probed, test, seed)
    test_frames = test.frames.flatten(0, 1)
    likelihood = held_out_likelihood(model, test_frames, likelihood_frames, noise_draws, seed)
    report = {
        "format": FORMAT,
        "checkpoint": source,
        "model": config.model,
        "data": str(data_dir),
        "split": "test",
        "size": meta.size,
        "pairs": len(pair_list),
        "seed": seed,
        "psnr_cap_db": PSNR_CAP,
        "bootstrap": {"draws": bootstrap_draws, "level": bootstrap.LEVEL, "over": "pairs"},
        "judges": judges.report,
        "methods": results,
        "versus_copy_target": versus,
        "skipped": skipped,
        "leakage": leaks,
        "likelihood": likelihood,
        "speed": _speed(results, run_dir, model),
        "pair_list": [
            {"target": clip_name(test.clips[t]), "driver": clip_name(test.clips[d])}
            for t, d in pair_list
        ],
    }
    if out is not None:
        out = Path(out)
        report["files"] = [str(p) for p in report_paths(out)]
        write_report(
            report, out, contact_sheet(test, pair_list, truth.frames, outputs, sheet_pairs)
        )
    return report


def _load_model(
    checkpoint_or_model: str | Path | tuple[FlowModel, Config],
    device: str,
    overrides: list[str] | None = None,
) -> tuple[FlowModel, Config, str, Path | None]:
    if isinstance(checkpoint_or_model, tuple):
        if overrides:
            raise ValueError("overrides apply to a checkpoint, not to an in-memory model")
        model, config = checkpoint_or_model
        return model.to(device).eval(), config, f"<{type(model).__name__} in memory>", None
    from factorflow import checkpoint as ckpt
    from factorflow.models import load

    path = Path(checkpoint_or_model)
    model, config = load(path, overrides, device)
    source = f"{path} {' '.join(overrides)}" if overrides else str(path)
    return model, config, source, ckpt.resolve(path, prefer_best=True).parent.parent


def _check_size(meta: SynthMeta, model: FlowModel, data_dir: str | Path) -> None:
    if model.frame_size is not None and meta.size != model.frame_size:
        raise ValueError(
            f"{data_dir} holds {meta.size}x{meta.size} frames but the model expects "
            f"{model.frame_size}x{model.frame_size}"
        )


def _clips_and_judges(
    meta: SynthMeta, judge_steps: int, word_steps: int, seed: int
) -> tuple[ClipSet, ClipSet, Judges]:
    """The train and test splits, and the judges trained on the real training clips."""
    log.info("loading clips from %s", meta.root)
    train, test = load_clips(meta, "train"), load_clips(meta, "test")
    log.info("training the judges on %d clips", len(train.clips))
    with torch_threads(1):
        judges = train_judges(train, test, len(meta.words), judge_steps, word_steps, seed)
    return train, test, judges


def _methods(
    model: FlowModel, config: Config, chosen: list[str], train: ClipSet, attribute_clips: int
) -> tuple[dict[str, Method], dict[str, str], FlowModel | None]:
    """The evaluated model first, then the chosen baselines; the skipped ones and the Glow view."""
    baselines, skipped, view = baseline_methods(chosen, model, config, train, attribute_clips)
    return {config.model: on_device(model, model.reenact), **baselines}, skipped, view


def _leakage(probed: dict[str, FlowModel], test: ClipSet, seed: int) -> dict[str, Any]:
    """Leakage probes of each probed model on all test clips, and the true mouth factors' info."""
    log.info("leakage probes on %d test clips", len(test.clips))
    leaks: dict[str, Any] = {}
    with torch_threads(1):  # small probe networks: see runtime.torch_threads
        for name, m in probed.items():
            try:
                opening = test.mouth[..., OPENING]
                leaks[name] = leakage(m, test.frames, test.speakers, test.words, opening, seed)
            except NotImplementedError as exc:  # a model without latent parts to probe
                leaks[name] = {"skipped": str(exc)}
        # What one frame can say about the word at best: the generator's true mouth factors.
        leaks[TRUE_MOUTH] = information({"r": test.mouth}, test.speakers, test.words, seed)
    return leaks


def _speed(
    results: dict[str, dict[str, Any]], run_dir: Path | None, model: FlowModel
) -> dict[str, Any]:
    return {
        "train_images_per_s": _train_images_per_s(run_dir),
        "device": str(model.device),
        **{
            f"{k}_frames_per_s": v["frames_per_s"]
            for k, v in results.items()
            if "frames_per_s" in v
        },
    }


def _train_images_per_s(run_dir: Path | None) -> float | None:
    from factorflow.engine.logger import read_metrics

    if run_dir is None:
        return None
    rates = [
        r["items_per_s"]
        for r in read_metrics(run_dir)
        if r.get("split") == "train" and "items_per_s" in r
    ]
    return float(np.median(rates)) if rates else None
