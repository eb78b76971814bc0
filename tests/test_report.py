"""The demo report's HTML building blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from factorflow.report import loss_curves, markdown_to_html


def test_markdown_tables_headings_and_lists_become_html() -> None:
    text = "# Title\n\n| a | b |\n|---|---|\n| 1 | <x> |\n\n- item\nplain"
    out = markdown_to_html(text)
    assert "<h2>Title</h2>" in out
    assert "<th>a</th><th>b</th>" in out and "<td>1</td><td>&lt;x&gt;</td>" in out
    assert "---" not in out and "<li>item</li>" in out and "<p>plain</p>" in out


def test_loss_curves_plot_every_logged_term(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "split": "train", "bpd": 3.0 / s, "pair": 1.0 / s} for s in (1, 2, 3)]
    rows.append({"step": 3, "split": "val", "bpd": 1.2})
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    path = loss_curves({"run": run, "missing": tmp_path / "nothing"}, tmp_path / "c.png")
    assert path is not None and Image.open(path).size[0] > 100
    assert loss_curves({"missing": tmp_path / "nothing"}, tmp_path / "d.png") is None
