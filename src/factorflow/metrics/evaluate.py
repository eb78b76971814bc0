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

PSNR per frame is capped at `PSNR_CAP` dB before averaging over frames: frames that agree exactly
(outside the mouth, copy-target often does) would otherwise make the mean infinite.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from factorflow.config import Config
from factorflow.data.readers import load_image
from factorflow.data.synth import MOUTH_FACTORS, ClipMeta, SynthMeta
from factorflow.images import save_png
from factorflow.io import atomic_write_text
from factorflow.metrics import bootstrap
from factorflow.metrics.baselines import (
    BASELINES,
    CopyTarget,
    GlowAttribute,
    GlowResidual,
    PixelPaste,
)
from factorflow.metrics.bootstrap import PairCorrelation, PairMeans, Statistic
from factorflow.metrics.classifiers import (
    MouthRegressor,
    WordClassifier,
    pearson,
    train_mouth_regressor,
    train_word_classifier,
)
from factorflow.metrics.image import region_scores
from factorflow.metrics.leakage import information, leakage
from factorflow.models.base import BatchRandom, FlowModel
from factorflow.runtime import torch_threads

log = logging.getLogger(__name__)

FORMAT = "factorflow-evaluation/1"
PSNR_CAP = 100.0
OPENING = MOUTH_FACTORS.index("opening")
IMAGE_METRICS = ("psnr", "psnr_mask", "psnr_outside", "ssim", "ssim_mask", "ssim_outside")
GROUND_TRUTH = "ground-truth"
TRUE_MOUTH = "true mouth factors (as r)"
CI = "_ci95"  # suffix of a figure's 95% bootstrap interval [low, high] in the report
# Figures compared pair by pair with copy-target ("versus_copy_target").
VERSUS = ("psnr_mask", "ssim_mask", "psnr_outside", "word_accuracy", "opening_corr")

# A method: (driver, target, driver_masks, target_masks) -> uint8 frames [T,3,H,W].
Method = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


@dataclass
class ClipSet:
    """Clips of one split, loaded: frames uint8 [N,T,3,H,W], masks bool [N,T,H,W], mouth factors
    float [N,T,F], word ids [N] (into the dataset's sorted words), speaker ids [N] (into this set's
    sorted speakers)."""

    clips: list[ClipMeta]
    frames: Tensor
    masks: Tensor
    mouth: Tensor
    words: Tensor
    speakers: Tensor


def load_clips(meta: SynthMeta, split: str) -> ClipSet:
    """Read a split's frames (PNG) and masks (npz) from disk."""
    clips = meta.clips(split)
    if not clips:
        raise ValueError(f"{meta.root}: the {split} split has no clips")
    frames, masks = [], []
    for clip in clips:
        frames.append(np.stack([load_image(meta.root / f) for f in clip.files]))
        with np.load(meta.root / clip.mask) as npz:
            masks.append(npz["masks"])
    lengths = {len(f) for f in frames}
    if len(lengths) != 1:
        raise ValueError(f"{meta.root}: {split} clips differ in length {sorted(lengths)}")
    word_id = {w: i for i, w in enumerate(meta.words)}
    speaker_id = {s: i for i, s in enumerate(sorted({c.speaker for c in clips}))}
    return ClipSet(
        clips=clips,
        frames=torch.from_numpy(np.stack(frames)).permute(0, 1, 4, 2, 3).contiguous(),
        masks=torch.from_numpy(np.stack(masks)).bool(),
        mouth=torch.from_numpy(np.stack([c.mouth for c in clips])).float(),
        words=torch.tensor([word_id[c.word] for c in clips]),
        speakers=torch.tensor([speaker_id[c.speaker] for c in clips]),
    )


MIN_PAIRS = 96  # EVALUATION.md section 5: at least 96 pairs on the benchmark


def default_pairs(clips: list[ClipMeta]) -> int:
    """Every test clip as a driver once, and at least `MIN_PAIRS` pairs (fewer only when the split
    has fewer cross-speaker pairs)."""
    speakers = [c.speaker for c in clips]
    candidates = sum(1 for a in speakers for b in speakers if a != b)
    return min(max(len(clips), MIN_PAIRS), candidates)


def make_pairs(clips: list[ClipMeta], n: int | None = None, seed: int = 0) -> list[tuple[int, int]]:
    """`n` distinct (target index, driver index) pairs of clips with different speakers.

    Drivers go through the clips in a seeded order, so with n >= the number of clips every clip
    drives at least once (n = the number of clips: exactly once); each driver's target is a
    random clip of another speaker not yet paired with it. n=None: `default_pairs`.
    """
    targets_of = {
        d: [t for t, target in enumerate(clips) if target.speaker != driver.speaker]
        for d, driver in enumerate(clips)
    }
    available = sum(len(v) for v in targets_of.values())
    n = default_pairs(clips) if n is None else n
    if n < 1 or n > available:
        raise ValueError(
            f"pairs={n}: expected 1..{available} (test clip pairs with different speakers)"
        )
    rng = np.random.default_rng(seed)
    order = [d for d in rng.permutation(len(clips)).tolist() if targets_of[d]]
    for d in order:
        rng.shuffle(targets_of[d])
    pairs: list[tuple[int, int]] = []
    rounds = 0
    while len(pairs) < n:
        for d in order:
            if rounds < len(targets_of[d]) and len(pairs) < n:
                pairs.append((targets_of[d][rounds], d))
        rounds += 1
    return pairs


@dataclass
class Judges:
    mouth: MouthRegressor
    words: WordClassifier
    report: dict[str, float]

    def opening(self, frames: Tensor) -> Tensor:
        """uint8 [N,3,H,W] -> measured mouth opening [N]."""
        return self.mouth.predict(frames)[:, OPENING]


def train_judges(
    train: ClipSet, test: ClipSet, n_words: int, steps: int, word_steps: int, seed: int
) -> Judges:
    start = time.perf_counter()
    mouth = train_mouth_regressor(
        train.frames.flatten(0, 1), train.mouth.flatten(0, 1), steps=steps, seed=seed
    )
    words = train_word_classifier(mouth, train.frames, train.words, n_words, word_steps, seed=seed)
    measured = mouth.predict(test.frames.flatten(0, 1))
    truth = test.mouth.flatten(0, 1)
    report = {
        "word_accuracy_real_train": float(
            (words.predict(train.frames) == train.words).float().mean()
        ),
        "word_accuracy_real_test": float((words.predict(test.frames) == test.words).float().mean()),
        "word_chance": 1.0 / n_words,
        **{
            f"{name}_corr_real_test": pearson(measured[:, k], truth[:, k])
            for k, name in enumerate(MOUTH_FACTORS)
        },
        "train_clips": len(train.clips),
        "test_clips": len(test.clips),
        "seconds": time.perf_counter() - start,
    }
    return Judges(mouth, words, report)


@dataclass
class Truth:
    """Ground truth of P pairs: frames uint8 [P,T,3,H,W], masks bool [P,T,H,W], the drivers'
    word ids [P] and true mouth opening [P,T]."""

    frames: Tensor
    masks: Tensor
    words: Tensor
    opening: Tensor


def render_truth(meta: SynthMeta, test: ClipSet, pair_list: list[tuple[int, int]]) -> Truth:
    """The generator's render of each pair: the target's face saying the driver's mouth track."""
    frames, masks = zip(
        *(meta.render_reenactment(test.clips[t], test.clips[d]) for t, d in pair_list), strict=True
    )
    drivers = torch.tensor([d for _, d in pair_list])
    return Truth(
        frames=torch.from_numpy(np.stack(frames)).permute(0, 1, 4, 2, 3).contiguous(),
        masks=torch.from_numpy(np.stack(masks)).bool(),
        words=test.words[drivers],
        opening=test.mouth[drivers, :, OPENING],
    )


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
    return {**stats, **_judged_statistics(outputs, driver_words, driver_opening, judges)}


def _judged_statistics(
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


def score(
    outputs: Tensor,
    truth: Tensor,
    truth_masks: Tensor,
    driver_words: Tensor,
    driver_opening: Tensor,
    judges: Judges,
    counts: Tensor | None = None,
) -> dict[str, Any]:
    """Scores of P reenacted clips (see `pair_statistics`), with intervals given `counts`."""
    stats = pair_statistics(outputs, truth, truth_masks, driver_words, driver_opening, judges)
    return summarize(stats, judges, counts)


def _likelihood(
    model: FlowModel, frames: Tensor, draws: int, seed: int, batch_size: int = 64
) -> dict[str, Any]:
    """Bits/dim of uint8 frames [N,3,H,W] under the model (`FlowModel.bits_per_dim`) at the bin
    centres and averaged over `draws` dequantisation noises, and the encode-decode error of its
    flow. A conditional flow (MI-flow, hybrid) reads the condition its model computes from the
    frame (`model.flow_condition`); its bits/dim is then conditional on that, flagged
    "conditional"."""
    rand = BatchRandom.seeded(seed, model.device)
    centre, noisy, err, mismatch = [], [], 0.0, 0
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            batch = frames[i : i + batch_size].to(model.device)
            centre.append(model.bits_per_dim(batch).cpu())
            draws_bpd = [model.bits_per_dim(batch, rand) for _ in range(draws)]
            noisy.append(torch.stack(draws_bpd).mean(0).cpu())
            batch_err, batch_mismatch = model.roundtrip_error(batch)
            err, mismatch = max(err, batch_err), mismatch + batch_mismatch
    out: dict[str, Any] = {
        "bpd_bin_centre": float(torch.cat(centre).mean()),
        "bpd_noise": float(torch.cat(noisy).mean()),
        "noise_draws": draws,
        "frames": len(frames),
        "conditional": model.plain_glow() is None,
        "encode_decode_max_abs_error": err,
        "encode_decode_uint8_mismatches": mismatch,
    }
    return out


def _on(module: FlowModel, reenact: Callable[[Tensor, Tensor], Tensor]) -> Method:
    """A model-like `reenact(driver, target)` as a Method running on the module's device."""
    return lambda d, t, dm, tm: reenact(d.to(module.device), t.to(module.device))


def _baselines(
    chosen: list[str], model: FlowModel, config: Config, train: ClipSet, attribute_clips: int
) -> tuple[dict[str, Method], dict[str, str], FlowModel | None]:
    """The chosen baselines as Methods, the ones skipped (name -> why), and the Glow view."""
    methods: dict[str, Method] = {}
    skipped: dict[str, str] = {}
    if "copy-target" in chosen:
        copy = CopyTarget()
        methods["copy-target"] = lambda d, t, dm, tm: copy.reenact(d, t)
    if "pixel-paste" in chosen:
        paste = PixelPaste()
        methods["pixel-paste"] = lambda d, t, dm, tm: paste.reenact(
            d, t, driver_masks=dm, target_masks=tm
        )
    wanted = [n for n in ("glow-swap", "glow-attribute", "glow-residual") if n in chosen]
    view = model.plain_glow() if wanted else None
    if view is None:
        for name in wanted:
            skipped[name] = "the model's flow is conditional (or absent): no plain Glow to run"
        return methods, skipped, None
    if "glow-swap" in chosen:
        if view is model:
            skipped["glow-swap"] = f"identical to the evaluated {config.model} model"
        else:
            methods["glow-swap"] = _on(view, view.reenact)
    if "glow-attribute" in chosen:
        idx = _spread(len(train.clips), attribute_clips)
        log.info("fitting attribute vectors on %d training clips", len(idx))
        attribute = GlowAttribute.fit(
            view, train.frames[idx], train.mouth[idx], list(MOUTH_FACTORS)
        )
        methods["glow-attribute"] = _on(view, attribute.reenact)
    if "glow-residual" in chosen:
        methods["glow-residual"] = _on(view, GlowResidual(view).reenact)
    return methods, skipped, view


def _spread(n: int, k: int) -> Tensor:
    """k indices spread evenly over range(n) (all of them when k >= n)."""
    return torch.linspace(0, n - 1, min(n, k)).round().long().unique()


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


def _select(baselines: str | list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(baselines, str):
        if baselines == "all":
            return list(BASELINES)
        if baselines == "none":
            return []
        baselines = [b.strip() for b in baselines.split(",") if b.strip()]
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}: choose from {list(BASELINES)}, all or none")
    return [b for b in BASELINES if b in baselines]


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
    least `MIN_PAIRS` (`default_pairs`). Every per-pair figure gets a 95% bootstrap interval over
    pairs (`bootstrap_draws` resamples, seeded by `seed`) under KEY_ci95.
    `baselines`: "all", "none", or names from BASELINES (list or comma-separated). With `out`
    (a .json path) the report is also written there, with OUT.md (tables) and OUT.png (contact
    sheet: driver | target | ground truth | each method, a few frames of `sheet_pairs` pairs),
    and lists them under "files". `overrides`: use-time config keys for a checkpoint
    (the model's registry `use_time_keys`, e.g. "mi.fine_latents=prior").
    """
    chosen = _select(baselines)
    meta = SynthMeta.load(data_dir)
    pair_list = make_pairs(meta.clips("test"), pairs, seed)
    model, config, source, run_dir = _load_model(checkpoint_or_model, device, overrides)
    _check_size(meta, model, data_dir)
    train, test, judges = _clips_and_judges(meta, judge_steps, word_steps, seed)
    methods = {config.model: _on(model, model.reenact)}
    baseline_methods, skipped, view = _baselines(chosen, model, config, train, attribute_clips)
    methods.update(baseline_methods)

    truth = render_truth(meta, test, pair_list)
    outputs, seconds = reenact_pairs(methods, test, pair_list)
    counts = bootstrap.resample_counts(len(pair_list), bootstrap_draws, seed)
    results, versus = score_methods(outputs, seconds, truth, judges, counts)
    probed = {config.model: model, **({"glow-swap": view} if "glow-swap" in methods else {})}
    leaks = _leakage(probed, test, seed)
    test_frames = test.frames.flatten(0, 1)
    try:
        frames = test_frames[_spread(len(test_frames), likelihood_frames)]
        likelihood = _likelihood(model, frames, noise_draws, seed)
    except NotImplementedError as exc:  # no likelihood of a whole frame (the mouth flow)
        likelihood = {"skipped": str(exc)}
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
            {"target": _clip_name(test.clips[t]), "driver": _clip_name(test.clips[d])}
            for t, d in pair_list
        ],
    }
    if out is not None:
        out = Path(out)
        report["files"] = [str(p) for p in report_paths(out)]
        write_report(report, out, _sheet(test, pair_list, truth.frames, outputs, sheet_pairs))
    return report


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


def reenact_pairs(
    methods: dict[str, Method], test: ClipSet, pair_list: list[tuple[int, int]]
) -> tuple[dict[str, Tensor], dict[str, float]]:
    """Every method on every pair -> outputs uint8 [P,T,3,H,W] and seconds spent, per method."""
    outputs: dict[str, Tensor] = {}
    seconds: dict[str, float] = {}
    for i, (name, method) in enumerate(methods.items()):
        log.info("reenacting %d pairs with %s (%d/%d)", len(pair_list), name, i + 1, len(methods))
        frames, spent = [], 0.0
        with torch.no_grad():
            for t, d in pair_list:
                start = time.perf_counter()
                frames.append(
                    method(test.frames[d], test.frames[t], test.masks[d], test.masks[t]).cpu()
                )
                spent += time.perf_counter() - start
        outputs[name] = torch.stack(frames)
        seconds[name] = spent
    return outputs, seconds


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
    truth_stats = _judged_statistics(truth.frames, truth.words, truth.opening, judges)
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


def _clip_name(clip: ClipMeta) -> str:
    return f"{clip.split}/{clip.word}/{clip.clip:05d} ({clip.speaker})"


def _sheet(
    test: ClipSet,
    pair_list: list[tuple[int, int]],
    truth: Tensor,
    outputs: dict[str, Tensor],
    n_pairs: int,
    n_frames: int = 4,
) -> np.ndarray:
    """Contact sheet uint8 [H,W,3]: columns driver | target | ground truth | each method; for each
    of the first `n_pairs` pairs, `n_frames` rows at the driver's most different mouth openings."""
    names = ["driver", "target", GROUND_TRUTH, *outputs]
    rows = []
    for p, (t, d) in enumerate(pair_list[:n_pairs]):
        opening = test.mouth[d, :, OPENING]
        order = torch.argsort(opening)
        picks = sorted({int(order[i]) for i in _spread(len(order), n_frames)})
        for f in picks:
            tf = min(f, test.frames.shape[1] - 1)
            tiles = [test.frames[d, f], test.frames[t, tf], truth[p, f]]
            tiles += [o[p, f] for o in outputs.values()]
            rows.append(torch.cat([x.permute(1, 2, 0) for x in tiles], 1))
    body = torch.cat(rows, 0).numpy()
    size = test.frames.shape[-1]
    scale = max(1, 128 // size)
    body = body.repeat(scale, 0).repeat(scale, 1)
    tile = size * scale
    header = Image.new("RGB", (body.shape[1], 14), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    for i, name in enumerate(names):
        draw.text((i * tile + 2, 2), name[: tile // 6], fill=(0, 0, 0))
    return np.concatenate([np.asarray(header), body], 0)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3f}" if value == 0 or 0.01 <= abs(value) < 100 else f"{value:.3g}"
    return str(value)


def _fmt_ci(value: Any, ci: Any) -> str:
    """`24.9 [24.1, 25.6]`: a point value and its interval, to a precision the interval carries
    (one decimal from 10 up, else three)."""
    if not isinstance(value, float) or not math.isfinite(value) or ci is None:
        return _fmt(value)
    low, high = (float("nan") if v is None else float(v) for v in ci)
    digits = 1 if abs(value) >= 10 else 3
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _table(first: str, cols: list[str], rows: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table lines: one row per entry of `rows`, one column per key in `cols`; a value
    with an interval (key + CI) shows it in brackets."""
    lines = ["| " + " | ".join([first, *cols]) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in rows.items():
        cells = [_fmt_ci(row.get(c), row.get(f"{c}{CI}")) for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables: methods x metrics, then leakage, likelihood and judges."""
    cols = [*IMAGE_METRICS, "word_accuracy", "word_accuracy_ratio", "opening_corr", "frames_per_s"]
    lines = [
        f"# Evaluation of {report['model']} ({report['checkpoint']})",
        "",
        f"{report['pairs']} (target, driver) pairs of held-out speakers from {report['data']} "
        f"(split {report['split']}, {report['size']}px, seed {report['seed']}). PSNR in dB "
        f"(per frame, capped at {report['psnr_cap_db']:g}, averaged); mask = the ground truth's "
        "mouth mask. Word accuracy by a lip-reading classifier trained on real training clips "
        "(label: the driver's word); ratio = / its accuracy on real test clips. opening_corr: "
        "Pearson r of the driver's true mouth opening and the opening measured on the output. "
        "Brackets: 95% bootstrap interval over pairs"
        + (f" ({report['bootstrap']['draws']} resamples)." if "bootstrap" in report else "."),
        "",
    ]
    lines += _table("method", cols, report["methods"])
    for name, why in report["skipped"].items():
        lines.append(f"| {name} | skipped: {why} |" + " |" * (len(cols) - 1))
    if report.get("versus_copy_target"):
        lines += [
            "",
            "## Against copy-target (method minus copy-target on the same pairs; an interval "
            "that excludes 0 is a difference)",
            "",
        ]
        lines += _table("method", list(VERSUS), report["versus_copy_target"])
    keys = [
        "speaker_from_r",
        "word_from_s",
        "opening_r2_from_s",
        "speaker_from_s",
        "word_from_r",
        "opening_r2_from_r",
        "chance_speaker",
        "chance_word",
    ]
    lines += [
        "",
        "## Leakage (linear probes on test clips; leakage = the first three, at chance is best)",
        "",
    ]
    probed = {k: v for k, v in report["leakage"].items() if "speaker_from_r" in v}
    lines += _table("representation", keys, probed)
    info = ["mi_r_word", "mi_s_speaker", "mi_r_speaker", "mi_s_word"]
    info += ["mi_ceiling_word", "mi_ceiling_speaker"]
    lines += [
        "",
        "## Information (InfoNCE lower bounds in nats on held-out clips; ceiling = label entropy)",
        "",
    ]
    lines += _table(
        "representation", info, {k: v for k, v in report["leakage"].items() if "skipped" not in v}
    )
    lines += [
        f"- {k}: skipped: {v['skipped']}" for k, v in report["leakage"].items() if "skipped" in v
    ]
    lines += ["", "## Likelihood and exactness", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in report["likelihood"].items()]
    lines += ["", "## Judges (trained on the fly)", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in report["judges"].items()]
    lines += ["", "## Speed", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in report["speed"].items()]
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    """NaN and infinities become null: strict JSON has no spelling for them."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_paths(out: Path) -> list[Path]:
    """OUT (JSON), OUT.md (tables), OUT.png (contact sheet)."""
    return [out, out.with_suffix(".md"), out.with_suffix(".png")]


def write_report(report: dict[str, Any], out: Path, sheet: np.ndarray | None = None) -> None:
    """Write the report to `report_paths(out)` (the PNG only given a sheet), each atomically."""
    json_path, md_path, png_path = report_paths(Path(out))
    atomic_write_text(json_path, json.dumps(_jsonable(report), indent=1, allow_nan=False) + "\n")
    atomic_write_text(md_path, markdown(report))
    if sheet is not None:
        save_png(sheet, png_path)
