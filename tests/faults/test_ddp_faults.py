"""DDP under faults: AF validates a last batch of one clip on two ranks; a rank that dies stops
the run with a non-zero exit and leaves every checkpoint written so far whole and unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from faults_testutils import snapshot

from factorflow import checkpoint as ckpt


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(e[5:]) for e in env if e.startswith(b"RANK=")]
    return ranks[0] if ranks else None


def test_af_on_two_ranks_then_one_rank_dies(glow_run: Path, tiny_lrw: Path, tmp_path: Path):
    run = tmp_path / "af-ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "factorflow.cli.main", "train", "--data", str(tiny_lrw), "--out", str(run),
         "--config", "tiny", "--model", "af", "--max-steps", "100000", "--no-progress",
         f"af.glow_checkpoint={glow_run}", "data.batch_size=2", "data.val_batch_size=3",
         "train.val_every=2", "train.ckpt_every=2", "train.keep_last=100",
         "train.tensorboard=false"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 150
        # two validations (steps 2 and 4) with 4 val clips in batches of 3 on 2 ranks
        while time.time() < deadline and len(ckpt.step_dirs(run / "checkpoints")) < 2:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.1)
        assert len(ckpt.step_dirs(run / "checkpoints")) >= 2
        before = {p.name: snapshot(p) for p in ckpt.step_dirs(run / "checkpoints")}
        workers = [p for c in _children(proc.pid) for p in [c, *_children(c)]]
        rank1 = [p for p in workers if _rank_of(p) == 1]
        assert rank1, workers
        os.kill(rank1[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    ours = [line for line in err.splitlines() if line.startswith("factorflow train (rank 0)")]
    assert (
        len(ours) == 1 and "lost contact with another process" in ours[0] and "--resume" in ours[0]
    )
    steps = ckpt.step_dirs(run / "checkpoints")
    assert all(ckpt.problem(s, optimizer=True) is None for s in steps)
    assert all(snapshot(run / "checkpoints" / name) == files for name, files in before.items())
    val = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"val"' in line]
    assert len(val) >= 2
