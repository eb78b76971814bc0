"""Helpers of the engine tests: the CLI as a subprocess, with one thread and a fixed hash seed."""

from __future__ import annotations

import os
import sys


def cli(*args: str) -> list[str]:
    """The command line of `factorflow ARGS` in a new process."""
    return [sys.executable, "-m", "factorflow.cli.main", *args]


def env(threads: int = 1) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONHASHSEED": "0"}


def train_then_kill(args: list[str], run, settle: float = 0.0):
    """Run `factorflow ARGS` (a train command writing `run`) in a new process and kill it with
    SIGKILL once its first checkpoint appears (after `settle` more seconds) -> the newest step
    folder it left, or None."""
    import signal
    import subprocess
    import time

    from factorflow import checkpoint as ckpt

    proc = subprocess.Popen(
        cli(*args), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and ckpt.latest(run) is None:
        time.sleep(0.02)
    time.sleep(settle)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return ckpt.latest(run)
