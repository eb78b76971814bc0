"""The benchmark tab's handler: `evaluate` a trained model on a few pairs of held-out speakers.

The data is a `factorflow synth` dataset the user names, or the demo's synthetic set (same
settings as `factorflow demo`, at the model's image size) generated once into the app's work
folder. Returns the report's Markdown tables and its contact sheet.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factorflow.app.run import Progress, motion_overrides, new_output_dir
from factorflow.app.settings import AppSettings
from factorflow.app.sources import saved_config
from factorflow.app.validate import InputError

__all__ = ["MAX_PAIRS", "BenchmarkResult", "demo_data", "logged_progress", "run_benchmark"]

MAX_PAIRS = 96


@dataclass
class BenchmarkResult:
    markdown: str
    sheet: Path  # contact sheet PNG: driver | target | ground truth | each method
    report: Path  # the JSON report
    summary: dict[str, Any]  # the model's row of the methods table


@contextlib.contextmanager
def logged_progress(progress: Progress, start: float, stop: float) -> Iterator[None]:
    """`evaluate` reports its steps by logging ("training the judges", "reenacting 8 pairs with
    af (1/3)", ...): while it runs, each message becomes the progress text, and the bar moves a
    third of the way left towards `stop`."""
    logger = logging.getLogger("factorflow.metrics")
    done = [start]

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            done[0] += (stop - done[0]) / 3
            progress(done[0], record.getMessage())

    handler, level = Forward(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


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
    progress(0.2, f"evaluating on {pairs} pairs")
    out = new_output_dir(settings.workdir, "bench") / "report.json"
    with logged_progress(progress, 0.2, 0.95):
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
