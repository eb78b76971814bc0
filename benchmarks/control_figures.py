"""Controlled generation judged: does a traversal open the mouth, does a word clip say the word?

    .venv/bin/python benchmarks/control_figures.py --data DATA --renderer flow \
        --gains auto 1 2 3 --sequences mean medoid --stats runs/control-stats --figures runs/control
    .venv/bin/python benchmarks/control_figures.py --data DATA --renderer model --gains auto 1 3
    (DATA = `factorflow synth --out DATA --size 64 --speakers 30 --words 8`)

For each checkpoint (default: the shipped demo-motioncode and demo-af), the mouth-factor stats
come from DATA's training clips (frames and word labels only, `factorflow.control.stats`); the
targets are the first frames (`--frame`) of held-out test clips, spread over the test speakers.
The judges are `evaluate`'s, trained on the real training clips (the generator's factors are
used to train and read the judges only):
- traverse: the opening regressor on every step of each direction (-k..+k sd); per target the
  Spearman rho of opening against the step; mean rho over targets with a 95% bootstrap interval
  (targets resampled), the share of targets whose opening is monotone along the direction
  (oriented by the mean rho's sign), the opening range between the ends, and the mouth-box /
  outside change ratio (a frozen output scores ~0 range; a whole-face change scores ratio ~1);
- word: a clip of each target saying each vocabulary word; the lip-reading judge's accuracy over
  all (target, word) pairs, with a 95% interval (targets resampled with their words), against
  chance and against the judge's accuracy on real test clips.
`--renderer`: the model's own `render_mouth`, or the flow map fitted with the stats (see
`factorflow.control.stats`). `--gains`: word-motion scales (auto: each word's training amplitude).
Prints Markdown tables; `--figures DIR` writes PNG sheets to look at (direction 1 on six targets;
the first target saying every word).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

ASSETS = Path(__file__).resolve().parent.parent / "src" / "factorflow" / "assets"
DEFAULT_CHECKPOINTS = (str(ASSETS / "demo-motioncode"), str(ASSETS / "demo-af"))


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman rho of two 1-D series (average ranks for ties; NaN if either is constant)."""
    from factorflow.metrics.classifiers import pearson

    def ranks(v: torch.Tensor) -> torch.Tensor:
        v = v.double()
        order = v.argsort()
        r = torch.empty_like(v)
        r[order] = torch.arange(len(v), dtype=torch.float64)
        for value in v.unique():  # ties share their mean rank
            same = v == value
            r[same] = r[same].mean()
        return r

    return pearson(ranks(x), ranks(y))


def mean_ci(values: torch.Tensor, counts: torch.Tensor) -> tuple[float, tuple[float, float]]:
    """Mean over targets [P] (NaN dropped) and its percentile interval under resamples [D,P]."""
    from factorflow.metrics.bootstrap import PairMeans, interval

    stat = PairMeans.of(values.double().view(len(values), -1))
    return stat.value, interval(stat, counts)


def targets_of(test, n: int) -> list[int]:
    """n test clips spread evenly over the split (its clips run speaker by speaker per word)."""
    idx = torch.linspace(0, len(test.clips) - 1, n).round().long().unique().tolist()
    return idx


def run_model(checkpoint: str, args, train, test, judges, meta, figures: Path | None) -> dict:
    from factorflow import control
    from factorflow.control.generate import mouth_change_ratio
    from factorflow.control.inputs import resolve_stats
    from factorflow.images import grid, save_png
    from factorflow.metrics import bootstrap
    from factorflow.metrics.classifiers import MOUTH_BOX
    from factorflow.models import load

    model, config = load(checkpoint)
    name = Path(checkpoint).name + ("" if args.renderer == "model" else f" ({args.renderer})")
    start = time.perf_counter()
    stats_dir = args.stats / f"{Path(checkpoint).name}-{args.renderer}" if args.stats else None
    flow = args.renderer == "flow"
    stats = resolve_stats(model, config, args.data, stats_dir, args.max_clips, flow_map=flow)
    stats_s = time.perf_counter() - start
    picks = targets_of(test, args.targets)
    counts = bootstrap.resample_counts(len(picks), seed=args.seed)
    faces = test.frames[picks, args.frame]

    # (a) traversal
    k, s = args.directions, args.steps
    openings = torch.zeros(len(picks), k, s)
    ratios = torch.zeros(len(picks))
    sheets = []
    start = time.perf_counter()
    for i, face in enumerate(faces):
        trav = control.traverse(model, face, stats, k, s, args.extent, args.renderer)
        openings[i] = judges.opening(trav.flatten(0, 1)).view(k, s)
        ratios[i] = mouth_change_ratio(trav, MOUTH_BOX)
        if i < 6:
            sheets.append(trav[0])
    trav_s = time.perf_counter() - start
    steps = torch.arange(s, dtype=torch.float64)
    rows = []
    for d in range(k):
        rho = torch.tensor([spearman(steps, openings[i, d]) for i in range(len(picks))])
        mean, ci = mean_ci(rho, counts)
        sign = 1.0 if mean >= 0 else -1.0
        diffs = sign * openings[:, d].diff(dim=1)
        monotone = int((diffs >= 0).all(1).sum())
        tol = 0.05 * (openings[:, d].amax(1) - openings[:, d].amin(1))
        nearly = int((diffs >= -tol[:, None]).all(1).sum())
        span = sign * (openings[:, d, -1] - openings[:, d, 0])
        span_mean, span_ci = mean_ci(span, counts)
        rows.append(
            {
                "direction": d + 1,
                "rho": mean,
                "rho_ci": ci,
                "monotone": monotone,
                "nearly": nearly,
                "span": span_mean,
                "span_ci": span_ci,
                "opens_with": "+" if sign > 0 else "-",
            }
        )
    ratio_mean, ratio_ci = mean_ci(ratios, counts)

    # (c) word clips
    n_words = len(meta.words)
    word_ids = {w.upper(): i for i, w in enumerate(meta.words)}
    word_sheet = torch.zeros(0)
    word_rows = []
    start = time.perf_counter()
    for sequence, gain in [(q, g) for q in args.sequences for g in args.gains]:
        correct = torch.zeros(len(picks), n_words)
        for i, face in enumerate(faces):
            clips = torch.stack(
                [
                    control.word_clip(
                        model,
                        face,
                        stats,
                        w,
                        None if gain == "auto" else float(gain),
                        sequence,
                        args.renderer,
                    )
                    for w in stats.words
                ]
            )
            truth = torch.tensor([word_ids[w.upper()] for w in stats.words])
            pred = judges.words.predict(clips)
            correct[i, truth] = (pred == truth).float()
            if i == 0 and not len(word_sheet):
                word_sheet = clips
        acc, acc_ci = mean_ci(correct, counts)
        word_rows.append(
            {
                "gain": gain,
                "sequence": sequence,
                "accuracy": acc,
                "accuracy_ci": acc_ci,
                "per_word": correct.mean(0).tolist(),
            }
        )
    word_s = time.perf_counter() - start

    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        save_png(
            grid(torch.cat(sheets), nrow=s), figures / f"{name.replace(' ', '_')}_traverse_dir1.png"
        )
        save_png(
            grid(word_sheet.flatten(0, 1), nrow=word_sheet.shape[1]),
            figures / f"{name.replace(' ', '_')}_words.png",
        )
    return {
        "name": name,
        "stats_clips": stats.info.get("clips"),
        "targets": len(picks),
        "directions": rows,
        "change_ratio": (ratio_mean, ratio_ci),
        "words": word_rows,
        "word_names": stats.words,
        "gains": (stats.info.get("flow_gain"), stats.word_gain),
        "seconds": {"stats": stats_s, "traverse": trav_s, "words": word_s},
    }


def _ci(v: tuple[float, float]) -> str:
    return f"[{v[0]:.2f}, {v[1]:.2f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoint", action="append", help="repeatable; default: the shipped demos")
    p.add_argument("--targets", type=int, default=24, help="held-out target faces")
    p.add_argument("--frame", type=int, default=0, help="which frame of each test clip is the face")
    p.add_argument("--directions", type=int, default=4)
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--extent", type=float, default=3.0)
    p.add_argument("--gains", nargs="+", default=["auto"], help="numbers or auto")
    p.add_argument("--sequences", nargs="+", default=["mean"], choices=["mean", "medoid"])
    p.add_argument("--renderer", default="model", choices=["model", "flow"])
    p.add_argument("--max-clips", type=int, help="training clips read for the stats")
    p.add_argument("--stats", type=Path, help="folder to keep/reuse each checkpoint's stats in")
    p.add_argument("--figures", type=Path, help="folder for PNG sheets")
    p.add_argument("--judge-steps", type=int, default=600)
    p.add_argument("--word-steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)

    from factorflow.data.synth import SynthMeta
    from factorflow.metrics.clips import load_clips
    from factorflow.metrics.judges import OPENING, train_judges

    meta = SynthMeta.load(args.data)
    train, test = load_clips(meta, "train"), load_clips(meta, "test")
    judges = train_judges(
        train, test, len(meta.words), args.judge_steps, args.word_steps, args.seed
    )
    real = judges.report["word_accuracy_real_test"]
    print(
        f"judges (trained on {len(train.clips)} real training clips): word accuracy on real test "
        f"clips {real:.3f} (chance {1 / len(meta.words):.3f}), opening r on real test frames "
        f"{judges.report['opening_corr_real_test']:.3f}"
    )
    results = [
        run_model(c, args, train, test, judges, meta, args.figures)
        for c in (args.checkpoint or DEFAULT_CHECKPOINTS)
    ]
    print(
        f"\n## Traverse: opening judge along each direction ({args.steps} steps, "
        f"-{args.extent}..+{args.extent} sd), held-out targets, 95% intervals over targets\n"
    )
    print(
        "| model | targets | direction | Spearman rho | monotone targets (drops < 5% of range) "
        "| opening range (closed->open end) | opens toward |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for d in r["directions"]:
            print(
                f"| {r['name']} | {r['targets']} | {d['direction']} | {d['rho']:.2f} "
                f"{_ci(d['rho_ci'])} | {d['monotone']}/{r['targets']} ({d['nearly']}) | "
                f"{d['span']:.3f} "
                f"{_ci(d['span_ci'])} | {d['opens_with']}sd |"
            )
    spread = test.mouth[..., OPENING]
    print(
        f"\nopening range of a real held-out clip (max - min over its frames), mean over "
        f"{len(test.clips)} clips: {float((spread.amax(1) - spread.amin(1)).mean()):.3f}"
    )
    print("\nmouth box / outside change along the traversals (a whole-face change is ~1):")
    for r in results:
        m, ci = r["change_ratio"]
        print(f"- {r['name']}: {m:.1f} {_ci(ci)}")
    chance = 1 / len(meta.words)
    print(
        f"\n## Word clips: lip-reading judge on (target, word) pairs, chance {chance:.3f}, "
        f"judge on real test clips {real:.3f}\n"
    )
    print("| model | sequence | gain | pairs | accuracy [95% CI] | ratio to real | per word |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for w in r["words"]:
            per = " ".join(
                f"{n[:3]}:{a:.2f}" for n, a in zip(r["word_names"], w["per_word"], strict=True)
            )
            print(
                f"| {r['name']} | {w['sequence']} | {w['gain']} | "
                f"{r['targets'] * len(r['word_names'])} | "
                f"{w['accuracy']:.3f} {_ci(w['accuracy_ci'])} | {w['accuracy'] / real:.2f} | "
                f"{per} |"
            )
    print("\ncalibration from the training clips (flow map gain; auto word gains):")
    for r in results:
        flow_gain, word_gain = r["gains"]
        words = " ".join(
            f"{w[:3]}:{float(g):.2f}" for w, g in zip(r["word_names"], word_gain, strict=True)
        )
        print(
            f"- {r['name']}: flow map x{'-' if flow_gain is None else round(flow_gain, 2)}; {words}"
        )
    print("\nseconds (stats, traverse, words) on this CPU:")
    for r in results:
        sec = r["seconds"]
        print(
            f"- {r['name']}: {sec['stats']:.0f}, {sec['traverse']:.0f}, {sec['words']:.0f} "
            f"(stats from {r['stats_clips']} training clips)"
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
