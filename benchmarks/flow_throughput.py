"""Training throughput and peak memory: factorflow's Glow vs normflows' Glow at one configuration.

Throughput: both models are built in this process and their training steps (forward + backward +
Adam) alternate, after warm-up, so drifting load on a shared machine hits both alike. Images/s
uses the median wall time per step; the median process CPU time per step is shown too (less
sensitive to other processes at one thread).
Memory: each model runs in its own subprocess (so the numbers belong to that model alone): build,
ActNorm init, two training steps. On CPU it reports the growth of ``ru_maxrss`` during init and
training over its value after building model and optimiser, plus the absolute peak RSS; on GPU
``torch.cuda.max_memory_allocated`` over what the model and optimiser hold before.

    python benchmarks/flow_throughput.py --config cpu-small --steps 10
    python benchmarks/flow_throughput.py --config paper --steps 5 --profile

normflows' model is built the way its README/examples build a multiscale Glow: ``GlowBlock`` x K
and ``Squeeze`` per level, ``MultiscaleFlow`` with ``GlowBase`` priors (not class-conditional).
Both use additive coupling, LU 1x1 convs and the same conv3x3-ReLU-conv1x1-ReLU-zero-conv3x3
nets; factorflow's split priors add one zero-initialised conv3x3 of the kept half per split
(Glow's prior), normflows' priors are per-channel constants.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import torch

CONFIGS = {
    "tiny": {"image_size": 32, "levels": 2, "steps": 4, "hidden": 64, "batch": 16},
    "cpu-small": {"image_size": 64, "levels": 4, "steps": 8, "hidden": 128, "batch": 16},
    "paper": {"image_size": 64, "levels": 4, "steps": 32, "hidden": 512, "batch": 4},
}
DEFAULT_STEPS = {"tiny": 20, "cpu-small": 10, "paper": 5}
MODELS = ("factorflow", "normflows")
N_BITS = 5


def build_factorflow(cfg: dict) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    from factorflow.flows import Glow, GlowConfig

    model = Glow(
        GlowConfig(
            image_size=cfg["image_size"],
            levels=cfg["levels"],
            steps=cfg["steps"],
            hidden=cfg["hidden"],
            coupling="additive",
            conv="lu",
            n_bits=N_BITS,
            checkpoint=cfg.get("checkpoint", False),
            recompute=cfg.get("recompute", "none"),
        )
    )

    def loss(x: torch.Tensor) -> torch.Tensor:
        return -model.log_prob(x).mean()

    return model, loss


def build_normflows(cfg: dict) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    import normflows as nf

    levels, steps, size = cfg["levels"], cfg["steps"], cfg["image_size"]
    channels = 3
    q0, merges, flows = [], [], []
    # normflows orders levels coarsest first (index 0 = top).
    for i in range(levels):
        level_channels = channels * 2 ** (levels + 1 - i)
        flows_ = [
            nf.flows.GlowBlock(level_channels, cfg["hidden"], scale=False, split_mode="channel")
            for _ in range(steps)
        ]
        flows_.append(nf.flows.Squeeze())
        flows.append(flows_)
        if i > 0:
            merges.append(nf.flows.Merge())
            latent = (channels * 2 ** (levels - i), size // 2 ** (levels - i))
        else:
            latent = (channels * 2 ** (levels + 1), size // 2**levels)
        q0.append(nf.distributions.GlowBase((latent[0], latent[1], latent[1])))
    model = nf.MultiscaleFlow(q0, flows, merges, class_cond=False)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return model.forward_kld(x)

    return model, loss


BUILDERS = {"factorflow": build_factorflow, "normflows": build_normflows}


class Trainer:
    """One model, its Adam optimiser and a fixed dequantised batch; ``step()`` is timed."""

    def __init__(self, name: str, cfg: dict, device: torch.device) -> None:
        from factorflow.flows import preprocess

        torch.manual_seed(0)
        self.name, self.device = name, device
        self.model, self.loss_fn = BUILDERS[name](cfg)
        self.model.to(device).train()
        self.params = sum(p.numel() for p in self.model.parameters())
        size = cfg["image_size"]
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(
            0, 256, (cfg["batch"], 3, size, size), dtype=torch.uint8, generator=gen
        )
        self.x = preprocess(images, N_BITS, generator=gen).to(device)
        self.n_dims = 3 * size * size
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)

    def init(self) -> float:
        """Data-dependent ActNorm init (first forward); returns bits/dim at init."""
        with torch.no_grad():
            nll = self.loss_fn(self.x).item()
        return nll / (self.n_dims * math.log(2.0)) + N_BITS

    def step(self) -> tuple[float, float]:
        """One training step; returns (wall seconds, process CPU seconds)."""
        start, start_cpu = time.perf_counter(), time.process_time()
        self.opt.zero_grad(set_to_none=True)
        self.loss_fn(self.x).backward()
        self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start, time.process_time() - start_cpu


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_worker(name: str, cfg: dict, device: str) -> None:
    """Peak memory of one model's training (its own process); prints one JSON line."""
    dev = torch.device(device)
    trainer = Trainer(name, cfg, dev)
    rss_before = _rss_mb()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    trainer.init()
    for _ in range(2):
        trainer.step()
    if dev.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
    else:
        peak = _rss_mb() - rss_before
    print(json.dumps({"peak_mb": peak, "peak_rss_mb": _rss_mb()}))


def measure_memory(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--memory-worker", name, "--config", args.config]
    cmd += ["--device", args.device, "--threads", str(args.threads)]
    if args.checkpoint:
        cmd.append("--checkpoint")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} memory run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def profile_steps(trainer: Trainer, rows: int = 18) -> str:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if trainer.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(2):
            trainer.step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return f"=== profile: {trainer.name} (2 steps, sorted by self CPU time) ===\n{table}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu-small")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--profile", action="store_true", help="torch.profiler top ops")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument(
        "--checkpoint", action="store_true", help="factorflow with gradient checkpointing"
    )
    parser.add_argument("--memory-worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = DEFAULT_STEPS[args.config] if args.steps is None else args.steps
    if steps < 1 or args.warmup < 0:
        parser.error(f"--steps must be >= 1 and --warmup >= 0, got {steps}, {args.warmup}")
    torch.set_num_threads(args.threads)
    # normflows' LU init calls the deprecated torch.lu; its warning is noise here.
    warnings.filterwarnings("ignore", message=".*torch.lu is deprecated.*")
    cfg = {**CONFIGS[args.config], "checkpoint": args.checkpoint}
    if args.memory_worker:
        memory_worker(args.memory_worker, cfg, args.device)
        return 0

    memory = {} if args.no_memory else {m: measure_memory(m, args) for m in MODELS}
    trainers = [Trainer(m, cfg, torch.device(args.device)) for m in MODELS]
    bpd_init = {t.name: t.init() for t in trainers}
    for _ in range(args.warmup):
        for t in trainers:
            t.step()
    times: dict[str, list[tuple[float, float]]] = {t.name: [] for t in trainers}
    for i in range(steps):
        for t in trainers if i % 2 == 0 else trainers[::-1]:
            times[t.name].append(t.step())

    batch = cfg["batch"]
    mem = "peak_alloc_MB" if args.device.startswith("cuda") else "rss_growth_MB"
    print(
        f"config={args.config} {cfg} device={args.device} threads={args.threads} "
        f"steps={steps} warmup={args.warmup} torch={torch.__version__}"
    )
    print(
        f"{'model':<11}{'params':>12}{'img/s':>9}{'ms/step':>10}{'min ms':>9}{'cpu ms':>9}"
        f"{mem:>15}{'peak_RSS_MB':>13}{'bpd@init':>10}"
    )
    summary = {}
    for t in trainers:
        wall = statistics.median(w for w, _ in times[t.name])
        cpu = statistics.median(c for _, c in times[t.name])
        m = memory.get(t.name, {"peak_mb": math.nan, "peak_rss_mb": math.nan})
        summary[t.name] = (batch / wall, cpu, m["peak_mb"])
        print(
            f"{t.name:<11}{t.params:>12,}{batch / wall:>9.2f}{1e3 * wall:>10.1f}"
            f"{1e3 * min(w for w, _ in times[t.name]):>9.1f}{1e3 * cpu:>9.1f}"
            f"{m['peak_mb']:>15.1f}{m['peak_rss_mb']:>13.1f}{bpd_init[t.name]:>10.3f}"
        )
    (ff_ips, ff_cpu, ff_mem), (nf_ips, nf_cpu, nf_mem) = (summary[m] for m in MODELS)
    mem_ratio = f", memory {ff_mem / nf_mem:.2f}x" if memory else ""
    print(
        f"ratio factorflow/normflows: throughput {ff_ips / nf_ips:.2f}x (wall), "
        f"{nf_cpu / ff_cpu:.2f}x (CPU time){mem_ratio}"
    )
    if args.profile:
        for t in trainers:
            print("\n" + profile_steps(t))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
