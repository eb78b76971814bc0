"""Multi-node training on one machine: two torchrun "nodes" of one process each over loopback,
on sharded data. They reach the single process's weights; a killed or hung rank stops the other
with a one-line error (no hang), and --resume on both nodes finishes the run exactly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from factorflow import checkpoint as ckpt
from factorflow.data.shards import convert

STEPS = 12
TRAIN = [
    "--config",
    "tiny",
    "--max-steps",
    str(STEPS),
    "--no-progress",
    "train.ckpt_every=4",
    "train.val_every=100",
    "train.sample_every=100",
    "train.keep_last=50",
]
TIMEOUT = 240  # seconds any launch may take before the test fails instead of blocking


@pytest.fixture(scope="module")
def shards(tiny_lrw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multinode") / "shards"
    convert(tiny_lrw, out, clips_per_shard=4)
    return out


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "FACTORFLOW_DIST_TIMEOUT_S": "20",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node(rank: int, port: int, data: Path, out: Path, *extra: str) -> subprocess.Popen:
    """One node of two, static rendezvous: its node rank, the master's address and port."""
    rendezvous = ["--node-rank", str(rank), "--master-addr", "127.0.0.1"]
    rendezvous += ["--master-port", str(port)]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        *rendezvous,
        "-m",
        "factorflow.cli.main",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        *TRAIN,
        "data.batch_size=4",
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(procs: list[subprocess.Popen], timeout: float = TIMEOUT) -> list[tuple[int, str]]:
    """(exit status, output) of each launch; kills all of them and fails on a timeout."""
    deadline = time.time() + timeout
    results = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.time()))
            results.append((proc.returncode, out))
    except subprocess.TimeoutExpired:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"multi-node launch still running after {timeout} s (a hang)")
    return results


def _worker_of(launcher: subprocess.Popen, timeout: float = 60) -> int:
    """The pid of the training process a torchrun launcher started."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == launcher.pid:
                return int(name)
        time.sleep(0.05)
    raise AssertionError("torchrun started no worker")


def _weights(run: Path, step: int = STEPS) -> dict:
    return load_file(str(run / "checkpoints" / f"step_{step:08d}" / "model.safetensors"))


def _assert_close(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k].float() - b[k].float()).abs().max() <= atol, k


@pytest.fixture(scope="module")
def single(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    cmd = [sys.executable, "-m", "factorflow.cli.main", "train", "--data", str(shards)]
    subprocess.run(
        [*cmd, "--out", str(out), *TRAIN, "data.batch_size=8"],
        check=True,
        env=_env(),
        capture_output=True,
        timeout=TIMEOUT,
    )
    return out


def test_two_nodes_equal_one_process(shards: Path, single: Path, tmp_path: Path) -> None:
    port, out = _free_port(), tmp_path / "two"
    results = _finish([_node(r, port, shards, out) for r in (0, 1)])
    for code, text in results:
        assert code == 0, text[-3000:]
    _assert_close(_weights(single), _weights(out))


def test_killed_rank_stops_the_other_then_resume_finishes(
    shards: Path, single: Path, tmp_path: Path
) -> None:
    port, out = _free_port(), tmp_path / "killed"
    nodes = [_node(r, port, shards, out) for r in (0, 1)]
    worker = _worker_of(nodes[1])
    deadline = time.time() + TIMEOUT
    while ckpt.latest(out) is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(worker, signal.SIGKILL)
    (code0, text0), (code1, _) = _finish(nodes, timeout=120)
    assert code0 != 0 and code1 != 0
    assert "error: lost contact with another process of this run" in text0, text0[-3000:]
    stopped_at = ckpt.load(ckpt.latest(out)).step
    assert stopped_at < STEPS

    port = _free_port()
    results = _finish([_node(r, port, shards, out, "--resume") for r in (0, 1)])
    for code, text in results:
        assert code == 0, text[-3000:]
    _assert_close(_weights(single), _weights(out))


def test_hung_rank_times_out_instead_of_blocking(shards: Path, tmp_path: Path) -> None:
    port, out = _free_port(), tmp_path / "hung"
    nodes = [_node(r, port, shards, out) for r in (0, 1)]
    worker = _worker_of(nodes[1])
    deadline = time.time() + TIMEOUT
    while ckpt.latest(out) is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(worker, signal.SIGSTOP)
    try:
        code0, text0 = _finish(nodes[:1], timeout=120)[0]
    finally:
        os.kill(worker, signal.SIGKILL)
        _finish(nodes[1:], timeout=60)
    assert code0 != 0
    assert "error: lost contact with another process of this run" in text0, text0[-3000:]
