"""The benchmark tab's handler: `evaluate` a trained model on a few pairs of held-out speakers.

The data is a `factorflow synth` dataset the user names, or the demo's synthetic set (same
settings as `factorflow demo`, at the model's image size) generated once into the app's work
folder. Returns the report's Markdown tables and its contact sheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factorflow.app.run import Progress, motion_overrides, new_output_dir
from factorflow.app.server import AppSettings
from factorflow.app.sources import saved_config
from factorflow.app.validate import InputError

MAX_PAIRS = 96


@dataclass
class BenchmarkResult:
    markdown: str
    sheet: Path  # contact sheet PNG: driver | target | ground truth | each method
    report: Path  # the JSON report
    summary: dict[str, Any]  # the model's row of the methods table


def demo_data(size: int, settings: AppSettings, progress: Progress) -> Path:
    """The demo's synthetic dataset at `size`, generated once per work folder."""
    from factorflow.data.synth import generate
    from factorflow.demo import SYNTH

    root = settings.workdir / f"synth{size}"
    if not (root / "meta.json").is_file():
        progress(0.05, f"generating synthetic test data ({size}x{size}, once)")
        generate(root, **{**SYNTH, "size": size}, workers=1)
    return root


def run_benchmark(
    model: Path,
    data: str | Path | None,
    pairs: int,
    baselines: list[str],
    settings: AppSettings,
    motion: str = "r",
    progress: Progress = lambda fraction, what: None,
    **evaluate_kwargs: Any,
) -> BenchmarkResult:
    """`metrics.evaluate.evaluate` on `pairs` pairs; `evaluate_kwargs` pass through (tests
    shorten the judges' training with them)."""
    from factorflow.metrics.evaluate import evaluate

    if not 1 <= int(pairs) <= MAX_PAIRS:
        raise InputError(f"pairs={pairs}: choose 1 to {MAX_PAIRS}")
    overrides = list(motion_overrides(model, motion))
    size = saved_config(model)["data"]["size"]
    if data is None or str(data).strip() == "":
        root = demo_data(size, settings, progress)
    else:
        root = Path(str(data).strip())
        if not (root / "meta.json").is_file():
            raise InputError(f"data {root}: not a `factorflow synth` dataset (no meta.json)")
    progress(0.2, f"evaluating on {pairs} pairs (judges, methods, probes)")
    out = new_output_dir(settings.workdir, "bench") / "report.json"
    report = evaluate(
        model,
        root,
        baselines=list(baselines),
        pairs=int(pairs),
        device=settings.device,
        out=out,
        overrides=overrides,
        **evaluate_kwargs,
    )
    progress(1.0, "done")
    return BenchmarkResult(
        markdown=out.with_suffix(".md").read_text(),
        sheet=out.with_suffix(".png"),
        report=out,
        summary=report["methods"][report["model"]],
    )
