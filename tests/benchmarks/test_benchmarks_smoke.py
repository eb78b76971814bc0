"""The GPU recipe script runs at tiny sizes on CPU, so it cannot rot between GPU runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def test_gpu_recipe_smoke_prints_every_variant() -> None:
    pytest.importorskip("normflows")
    script = ROOT / "benchmarks" / "gpu_recipe.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for variant in ("factorflow fp32", "factorflow bf16 recompute", "normflows fp32"):
        assert variant in proc.stdout
    assert "throughput" in proc.stdout


def test_stream_loader_smoke_prints_both_layouts(tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "stream_loader.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--work", str(tmp_path), "--big", "240", "--small", "80"]
        + ["--words", "20", "--size", "8", "--batch", "8"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| frame folders | 80 |" in proc.stdout and "| shards | 240 |" in proc.stdout
    assert "peak RSS, shards 240 vs 80 clips" in proc.stdout
