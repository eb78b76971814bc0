"""Peak training memory and step time against flow depth K: plain autograd, invertible
recomputation (`flow.recompute=all`) and normflows' Glow, at the paper's width.

Each (variant, K) runs in its own process (build, ActNorm init, two training steps) and reports
the peak during the training steps (CPU: VmHWM, reset through /proc/self/clear_refs; GPU:
`torch.cuda.max_memory_allocated`) over what persists between steps (weights, gradients, Adam's
state: the activations autograd keeps) and over the built model (the total a step adds). Step
times of plain and recomputed factorflow are measured in one process, alternating, so load on a
shared machine hits both alike. Prints one table and the ratios.

    python benchmarks/recompute_memory.py                       # paper width, K = 8, 16, 32
    python benchmarks/recompute_memory.py --ks 2 4 --hidden 32 --size 32 --batch 4   # smoke
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from flow_throughput import Trainer  # noqa: E402  (a sibling script)

VARIANTS = {
    "plain": ("factorflow", "none"),
    "recompute": ("factorflow", "all"),
    "normflows": ("normflows", "none"),
}


def _cfg(args: argparse.Namespace, k: int, recompute: str) -> dict:
    return {
        "image_size": args.size,
        "levels": args.levels,
        "steps": k,
        "hidden": args.hidden,
        "batch": args.batch,
        "recompute": recompute,
    }


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _allocated(dev: torch.device) -> float:
    """Memory in use now: CUDA's allocated bytes, or resident memory after handing freed heap
    back to the system (so memory freed earlier is not silently reused below the baseline)."""
    if dev.type == "cuda":
        return torch.cuda.memory_allocated(dev) / 2**20
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return _status_mb("VmRSS")


def _reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


def _peak(dev: torch.device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return _status_mb("VmHWM")


def worker(spec: str) -> None:
    """Peak memory of training steps over what persists between steps (weights, gradients and
    Adam's state, all allocated before the baseline): the activations autograd keeps, which is
    what recomputation saves, and over the built model (everything a step adds)."""
    job = json.loads(spec)
    dev = torch.device(job["device"])
    trainer = Trainer(job["model"], job["cfg"], dev)
    built = _allocated(dev)
    _reset_peak(dev)
    trainer.init()
    for p in trainer.model.parameters():  # gradients and Adam state exist before the baseline
        p.grad = torch.zeros_like(p)
    trainer.opt.step()  # zero gradients: Adam allocates its state, the weights do not move
    state = _allocated(dev)
    _reset_peak(dev)
    for _ in range(2):
        trainer.opt.zero_grad(set_to_none=False)
        trainer.loss_fn(trainer.x).backward()
        trainer.opt.step()
    peak = _peak(dev)
    out = {"activations_mb": peak - state, "total_mb": peak - built, "params": trainer.params}
    print(json.dumps(out))


def peak(args: argparse.Namespace, variant: str, k: int) -> dict:
    model, recompute = VARIANTS[variant]
    job = {"model": model, "cfg": _cfg(args, k, recompute), "device": args.device}
    cmd = [sys.executable, __file__, "--worker", json.dumps(job)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} K={k} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def step_times(args: argparse.Namespace, k: int) -> dict[str, float]:
    dev = torch.device(args.device)
    runs = {v: Trainer("factorflow", _cfg(args, k, VARIANTS[v][1]), dev) for v in VARIANTS}
    runs.pop("normflows")
    for t in runs.values():
        t.init()
        t.step()
    times: dict[str, list[float]] = {v: [] for v in runs}
    order = list(runs)
    for i in range(args.steps):
        for v in order if i % 2 == 0 else order[::-1]:
            times[v].append(runs[v].step()[0])
    return {v: statistics.median(ts) for v, ts in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ks", type=int, nargs="+", default=[8, 16, 32], help="steps per level K")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        worker(args.worker)
        return 0
    unit = "peak_alloc_MB" if args.device.startswith("cuda") else "rss_growth_MB"
    print(
        f"size={args.size} levels={args.levels} hidden={args.hidden} batch={args.batch} "
        f"device={args.device} threads={args.threads} torch={torch.__version__} ({unit})"
    )
    print("activations: peak over weights + gradients + Adam state; total: peak over the model")
    print(
        f"{'K':>3}{'params':>12} | {'activations MB: plain':>21}{'recompute':>10}{'normflows':>10}"
        f"{'rec/plain':>10}{'rec/nf':>7} | {'total MB: plain':>15}{'recompute':>10}"
        f"{'normflows':>10}{'rec/plain':>10}{'rec/nf':>7} | {'ms plain':>8}{'rec':>7}{'x':>6}"
    )
    for k in args.ks:
        mem = {v: peak(args, v, k) for v in VARIANTS}
        t = step_times(args, k)
        a = {v: mem[v]["activations_mb"] for v in VARIANTS}
        m = {v: mem[v]["total_mb"] for v in VARIANTS}
        print(
            f"{k:>3}{mem['plain']['params']:>12,} | {a['plain']:>21.0f}{a['recompute']:>10.0f}"
            f"{a['normflows']:>10.0f}{a['recompute'] / a['plain']:>10.2f}"
            f"{a['recompute'] / a['normflows']:>7.2f} | {m['plain']:>15.0f}{m['recompute']:>10.0f}"
            f"{m['normflows']:>10.0f}{m['recompute'] / m['plain']:>10.2f}"
            f"{m['recompute'] / m['normflows']:>7.2f} | {1e3 * t['plain']:>8.0f}"
            f"{1e3 * t['recompute']:>7.0f}{t['recompute'] / t['plain']:>6.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
