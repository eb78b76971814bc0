"""The evaluation report on disk: JSON (strict: no NaN), Markdown tables and the contact sheet."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from factorflow.images import save_png
from factorflow.io import atomic_write_text, strict_json
from factorflow.metrics.scoring import CI, IMAGE_METRICS, VERSUS

__all__ = ["markdown", "report_paths", "write_report"]


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


def report_paths(out: Path) -> list[Path]:
    """OUT (JSON), OUT.md (tables), OUT.png (contact sheet)."""
    return [out, out.with_suffix(".md"), out.with_suffix(".png")]


def write_report(report: dict[str, Any], out: Path, sheet: np.ndarray | None = None) -> None:
    """Write the report to `report_paths(out)` (the PNG only given a sheet), each atomically."""
    json_path, md_path, png_path = report_paths(Path(out))
    atomic_write_text(json_path, strict_json(report))
    atomic_write_text(md_path, markdown(report))
    if sheet is not None:
        save_png(sheet, png_path)
