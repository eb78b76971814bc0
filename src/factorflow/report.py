"""The demo report: metrics table, contact sheets, GIFs/videos and loss curves in one HTML page."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

from factorflow.engine.logger import read_metrics
from factorflow.io import atomic_write_text

__all__ = ["loss_curves", "markdown_to_html", "write_report"]


def markdown_to_html(text: str) -> str:
    """The small Markdown subset `metrics.report.markdown` writes: headings, tables, lists."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rows = table
            out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
            out.extend("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
            out.append("</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):
                table.append(cells)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level + 1}>{html.escape(line.lstrip('# '))}</h{level + 1}>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def loss_curves(runs: dict[str, Path], out: Path) -> Path | None:
    """Training curves of each run's metrics.jsonl (every logged term) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {name: read_metrics(path) for name, path in runs.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    skip = {"step", "split", "time", "lr", "grad_norm", "items_per_s", "loss", "objective"}
    fig, axes = plt.subplots(1, len(series), figsize=(5.5 * len(series), 3.6), squeeze=False)
    for ax, (name, records) in zip(axes[0], series.items(), strict=True):
        for split, style in (("train", "-"), ("val", "o--")):
            rows = [r for r in records if r.get("split") == split]
            keys = sorted({k for r in rows for k in r} - skip)
            for key in keys:
                pts = [(r["step"], r[key]) for r in rows if key in r]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, style, label=f"{split} {key}", markersize=3)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _media(path: str) -> str:
    if path.endswith(".mp4"):
        return f'<video src="{path}" controls loop autoplay muted></video>'
    return f'<img src="{path}" alt="{html.escape(path)}">'


def write_report(
    out: Path, report: dict[str, Any], artifacts: dict[str, str], run: Path, seconds: float
) -> Path:
    """runs/demo/index.html from the evaluation report and the files the demo wrote."""
    from factorflow.metrics.report import markdown

    out = Path(out)
    runs = {"stage 1 (Glow)": run / "stage1", "stage 2 (AF)": run}
    curves = loss_curves(runs, out / "loss_curves.png")
    parts = [
        "<!doctype html><meta charset='utf-8'><title>factorflow demo</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 6px;text-align:right}img,video{max-width:100%;image-rendering:pixelated}"
        "</style>",
        "<h1>factorflow demo</h1>",
        f"<p>Model: <code>{html.escape(str(run))}</code>. Made {time.strftime('%Y-%m-%d %H:%M')}"
        f" in {seconds / 60:.1f} min.</p>",
        "<h2>Held-out speakers: driver (left) drives four new faces</h2>",
        "<p>Top row: the generator's ground truth. Bottom row: the model's reenactment.</p>",
        _media(artifacts["heldout_gif"]),
    ]
    if "real_video" in artifacts:
        parts += [
            "<h2>Real video</h2>",
            f"<p>{html.escape(artifacts.get('real_caption', ''))}</p>",
            _media(artifacts["real_video"]),
        ]
        if "real_gif" in artifacts:
            parts.append(_media(artifacts["real_gif"]))
        if "real_metrics" in artifacts:
            metrics = json.loads((out / artifacts["real_metrics"]).read_text())
            parts.append(
                "<ul>"
                + "".join(
                    f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in metrics.items()
                )
                + "</ul>"
            )
    parts += [
        "<h2>Contact sheet: driver | target | ground truth | each method</h2>",
        _media(artifacts["contact_sheet"]),
        markdown_to_html(markdown(report)),
    ]
    if curves is not None:
        parts += ["<h2>Training curves</h2>", _media(curves.name)]
    path = out / "index.html"
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
