"""`factorflow evaluate`: the metrics and baselines of EVALUATION.md on a synthetic test split."""

from __future__ import annotations

import argparse
from pathlib import Path

from factorflow.cli.main import CLIError, check_device

__all__ = ["add_parser", "check_test_split", "run"]


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="run folder or checkpoint folder")
    p.add_argument("--data", required=True, type=Path, help="a `factorflow synth` dataset")
    p.add_argument(
        "--out", required=True, type=Path, help="REPORT.json (REPORT.md and REPORT.png beside it)"
    )
    p.add_argument(
        "--baselines",
        default="all",
        help="all, none, or a comma-separated list of copy-target, pixel-paste, glow-swap, "
        "glow-attribute, glow-residual",
    )
    p.add_argument("--force", action="store_true", help="replace an existing report")
    p.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="(target, driver) pairs of test clips (default: every test clip as a driver, >= 96)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="use-time keys: mi.fine_latents=prior"
    )


def check_test_split(data: Path) -> None:
    """Refuse, before any work, a dataset whose test split cannot be evaluated: none at all, or
    one clip per (speaker, word), which leaves the leakage probes nothing to test on."""
    from collections import Counter

    from factorflow.data.synth import SynthMeta

    clips = SynthMeta.load(data).clips("test")
    if not clips or not (data / "test").is_dir():
        raise CLIError(
            f"--data {data} has no test split ({data / 'test'}): evaluate a dataset made by "
            "`factorflow synth`, which holds one"
        )
    if max(Counter((c.speaker, c.word) for c in clips).values()) < 2:
        raise CLIError(
            f"--data {data}: its test split has one clip per (speaker, word) and the leakage "
            "probes need two: make it with `factorflow synth --clips-per-pair 2`"
        )


def run(args: argparse.Namespace) -> int:
    from factorflow.io import check_output
    from factorflow.metrics.evaluate import evaluate
    from factorflow.metrics.report import report_paths

    if args.out.suffix != ".json":
        raise CLIError(f"--out {args.out}: expected a .json file name")
    if not args.data.is_dir():
        raise CLIError(f"--data {args.data} is not a folder")
    check_device(args.device)
    if args.pairs is not None and args.pairs < 1:
        raise CLIError(f"--pairs {args.pairs}: expected at least 1")
    for path in report_paths(args.out):
        check_output(path, args.force, inputs=[args.checkpoint, args.data])
    check_test_split(args.data)
    report = evaluate(
        args.checkpoint,
        args.data,
        baselines=args.baselines,
        pairs=args.pairs,
        seed=args.seed,
        device=args.device,
        out=args.out,
        overrides=args.overrides,
    )
    row = report["methods"][report["model"]]

    def figure(key: str, digits: int) -> str:
        low, high = row.get(f"{key}_ci95") or (float("nan"), float("nan"))
        return f"{row[key]:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    print(
        f"evaluated {report['model']} on {report['pairs']} test pairs (95% intervals): "
        f"PSNR mask {figure('psnr_mask', 2)} dB, outside {figure('psnr_outside', 2)} dB, "
        f"word accuracy ratio {figure('word_accuracy_ratio', 2)}, "
        f"opening r {figure('opening_corr', 2)}; wrote {', '.join(report['files'])}"
    )
    return 0
