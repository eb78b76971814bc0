"""Helpers of the engine tests: the CLI as a subprocess, with one thread and a fixed hash seed."""

from __future__ import annotations

import os
import sys


def cli(*args: str) -> list[str]:
    """The command line of `factorflow ARGS` in a new process."""
    return [sys.executable, "-m", "factorflow.cli.main", *args]


def env(threads: int = 1) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONHASHSEED": "0"}
