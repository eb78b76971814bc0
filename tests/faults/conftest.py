"""Fixtures for fault injection: a small trained run to damage (copy it first)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from faults_testutils import RUN_OVERRIDES

from factorflow.config import load_config
from factorflow.engine.trainer import train


@pytest.fixture(scope="session")
def glow_run(tiny_lrw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Glow run with checkpoints at steps 2, 4 and 6 (read-only: copy before damaging)."""
    run = tmp_path_factory.mktemp("glow") / "run"
    train(load_config("tiny", RUN_OVERRIDES), tiny_lrw, run, progress=False)
    return run


@pytest.fixture
def run_copy(glow_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(glow_run, tmp_path / "run"))
