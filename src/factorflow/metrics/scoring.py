"""Scores of reenacted clips against the ground truth: per-pair statistics of every figure, their
point values and bootstrap intervals, and each method's paired difference to copy-target.

PSNR per frame is capped at `PSNR_CAP` dB before averaging over frames: frames that agree exactly
(outside the mouth, copy-target often does) would otherwise make the mean infinite.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from factorflow.metrics import bootstrap
from factorflow.metrics.bootstrap import PairCorrelation, PairMeans, Statistic
from factorflow.metrics.image import region_scores
from factorflow.metrics.judges import Judges, Truth

__all__ = [
    "CI",
    "GROUND_TRUTH",
    "IMAGE_METRICS",
    "PSNR_CAP",
    "VERSUS",
    "judged_statistics",
    "pair_statistics",
    "score_methods",
    "summarize",
]

PSNR_CAP = 100.0


IMAGE_METRICS = ("psnr", "psnr_mask", "psnr_outside", "ssim", "ssim_mask", "ssim_outside")


GROUND_TRUTH = "ground-truth"


CI = "_ci95"  # suffix of a figure's 95% bootstrap interval [low, high] in the report


# Figures compared pair by pair with copy-target ("versus_copy_target").
VERSUS = ("psnr_mask", "ssim_mask", "psnr_outside", "word_accuracy", "opening_corr")


def pair_statistics(
    outputs: Tensor,
    truth: Tensor,
    truth_masks: Tensor,
    driver_words: Tensor,
    driver_opening: Tensor,
    judges: Judges,
) -> dict[str, Statistic]:
    """Per-pair sufficient statistics of every figure for P reenacted clips: outputs/truth uint8
    [P,T,3,H,W], truth_masks [P,T,H,W], driver_words [P], driver_opening [P,T]. Image metrics per
    frame (PSNR capped at `PSNR_CAP`), word accuracy per clip, opening r over all frames."""
    p, t = outputs.shape[:2]
    regions = region_scores(outputs.flatten(0, 1), truth.flatten(0, 1), truth_masks.flatten(0, 1))
    stats: dict[str, Statistic] = {
        k: PairMeans.of((v.clamp(max=PSNR_CAP) if k.startswith("psnr") else v).view(p, t))
        for k, v in regions.items()
    }
    return {**stats, **judged_statistics(outputs, driver_words, driver_opening, judges)}


def judged_statistics(
    outputs: Tensor, driver_words: Tensor, driver_opening: Tensor, judges: Judges
) -> dict[str, Statistic]:
    p, t = outputs.shape[:2]
    correct = (judges.words.predict(outputs) == driver_words).double()
    opening = judges.opening(outputs.flatten(0, 1)).view(p, t)
    return {
        "word_accuracy": PairMeans.of(correct[:, None]),
        "opening_corr": PairCorrelation.of(opening, driver_opening.view(p, t)),
    }


def summarize(
    stats: dict[str, Statistic], judges: Judges, counts: Tensor | None = None
) -> dict[str, Any]:
    """Point values of `pair_statistics` (plus word_accuracy_ratio = accuracy / the judge's
    accuracy on real test clips) and, given bootstrap `counts` [draws, P], KEY_ci95 = [low, high]
    for each."""
    real = judges.report["word_accuracy_real_test"]
    ratio = 1.0 / real if real > 0 else float("nan")
    scaled = {k: (k, 1.0) for k in stats}
    if "word_accuracy" in stats:
        scaled["word_accuracy_ratio"] = ("word_accuracy", ratio)
    out: dict[str, Any] = {}
    for key, (name, scale) in scaled.items():
        out[key] = stats[name].value * scale
    if counts is not None:
        for key, (name, scale) in scaled.items():
            out[f"{key}{CI}"] = list(bootstrap.interval(stats[name], counts, scale))
    return out


def score_methods(
    outputs: dict[str, Tensor],
    seconds: dict[str, float],
    truth: Truth,
    judges: Judges,
    counts: Tensor,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Rows of the methods table (with the ground-truth row) and, when copy-target was run, each
    other method's paired difference to it (`VERSUS` figures, same resamples)."""
    stats: dict[str, dict[str, Statistic]] = {}
    results: dict[str, dict[str, Any]] = {}
    for name, frames in outputs.items():
        stats[name] = pair_statistics(
            frames, truth.frames, truth.masks, truth.words, truth.opening, judges
        )
        results[name] = summarize(stats[name], judges, counts)
        results[name]["frames_per_s"] = frames.shape[:2].numel() / max(seconds[name], 1e-9)
    truth_stats = judged_statistics(truth.frames, truth.words, truth.opening, judges)
    results[GROUND_TRUTH] = summarize(truth_stats, judges, counts)
    versus: dict[str, dict[str, Any]] = {}
    if "copy-target" in stats:
        base = stats["copy-target"]
        for name, row in stats.items():
            if name == "copy-target":
                continue
            versus[name] = {}
            for key in VERSUS:
                diff, ci = bootstrap.paired_difference(row[key], base[key], counts)
                versus[name][key] = diff
                versus[name][f"{key}{CI}"] = list(ci)
    return results, versus
