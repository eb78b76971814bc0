"""Training throughput and peak memory: factorflow's Glow vs normflows' Glow at one configuration.

Each model is measured in its own subprocess (so peak RSS belongs to that model alone): build,
ActNorm init on one batch, warm-up steps, then timed steps of forward + backward + Adam. With
``--repeats R`` the two models run R times each, alternating, and the step times are pooled.
Images/s uses the median wall time per step (robust to other load on a shared machine); the
process CPU time per step is shown too, as it is less sensitive to that load at one thread. Peak
memory is ``torch.cuda.max_memory_allocated`` growth on GPU, and on CPU the growth of
``ru_maxrss`` during training over its value after building model and optimiser (plus the
absolute peak RSS).

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
from dataclasses import asdict, dataclass

import torch

CONFIGS = {
    "tiny": {"image_size": 32, "levels": 2, "steps": 4, "hidden": 64, "batch": 16},
    "cpu-small": {"image_size": 64, "levels": 4, "steps": 8, "hidden": 128, "batch": 16},
    "paper": {"image_size": 64, "levels": 4, "steps": 32, "hidden": 512, "batch": 4},
}
DEFAULT_STEPS = {"tiny": 20, "cpu-small": 10, "paper": 5}
MODELS = ("factorflow", "normflows")
N_BITS = 5


@dataclass
class Result:
    model: str
    params: int
    wall_s: list[float]
    cpu_s: list[float]
    peak_mb: float
    peak_rss_mb: float
    bpd_init: float


def build_factorflow(cfg: dict) -> tuple[torch.nn.Module, callable]:
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
        )
    )

    def loss(x: torch.Tensor) -> torch.Tensor:
        return -model.log_prob(x).mean()

    return model, loss


def build_normflows(cfg: dict) -> tuple[torch.nn.Module, callable]:
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(model_name: str, cfg: dict, steps: int, warmup: int, device: str, profile: bool) -> None:
    """Measure one model; print one JSON line (and the profile table to stderr)."""
    from factorflow.flows import preprocess

    dev = torch.device(device)
    torch.manual_seed(0)
    build = build_factorflow if model_name == "factorflow" else build_normflows
    model, loss_fn = build(cfg)
    model.to(dev).train()
    size, batch = cfg["image_size"], cfg["batch"]
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
    x = preprocess(images, N_BITS, generator=gen).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    _sync(dev)
    rss_before = _rss_mb()
    if dev.type == "cuda":
        base = torch.cuda.memory_allocated(dev)
    with torch.no_grad():  # data-dependent ActNorm init, outside the timed steps for both
        bpd_init = loss_fn(x).item() / (3 * size * size * math.log(2.0)) + N_BITS

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(x).backward()
        opt.step()

    for _ in range(warmup):
        step()
    _sync(dev)
    wall, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        _sync(dev)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if dev.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
    else:
        peak = _rss_mb() - rss_before
    result = Result(
        model=model_name,
        params=sum(p.numel() for p in model.parameters()),
        wall_s=wall,
        cpu_s=cpu,
        peak_mb=peak,
        peak_rss_mb=_rss_mb(),
        bpd_init=bpd_init,
    )
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        activities = [ProfilerActivity.CPU]
        if dev.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        with torch_profile(activities=activities) as prof:
            for _ in range(2):
                step()
            _sync(dev)
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)
        print(
            f"\n=== profile: {model_name} (2 steps, sorted by self CPU time) ===\n{table}",
            file=sys.stderr,
        )
    print(json.dumps(asdict(result)))


def run_worker(args: argparse.Namespace, model_name: str) -> Result:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        model_name,
        "--config",
        args.config,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
    ]
    if args.profile:
        cmd.append("--profile")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.stderr:
        print(proc.stderr, file=sys.stderr, end="")
    if proc.returncode != 0:
        raise RuntimeError(f"{model_name} benchmark failed with exit code {proc.returncode}")
    return Result(**json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu-small")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default per config)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--profile", action="store_true", help="torch.profiler top ops")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = DEFAULT_STEPS[args.config]
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1:
        parser.error(
            f"--steps and --repeats must be >= 1 and --warmup >= 0, "
            f"got {args.steps}, {args.repeats}, {args.warmup}"
        )
    torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.config]
    if args.worker:
        worker(args.worker, cfg, args.steps, args.warmup, args.device, args.profile)
        return 0

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown --models {unknown}, expected a subset of {list(MODELS)}")
    runs: dict[str, list[Result]] = {m: [] for m in models}
    for repeat in range(args.repeats):
        order = models if repeat % 2 == 0 else models[::-1]
        for m in order:
            runs[m].append(run_worker(args, m))
    batch = cfg["batch"]
    mem = "peak_alloc_MB" if args.device.startswith("cuda") else "rss_growth_MB"
    print(
        f"config={args.config} {cfg} device={args.device} threads={args.threads} "
        f"steps={args.steps}x{args.repeats} warmup={args.warmup} torch={torch.__version__}"
    )
    header = f"{'model':<11}{'params':>12}{'img/s':>9}{'ms/step':>10}{'min ms':>9}{'cpu ms':>9}"
    print(f"{header}{mem:>15}{'peak_RSS_MB':>13}{'bpd@init':>10}")
    summary = {}
    for m, rs in runs.items():
        wall = statistics.median(t for r in rs for t in r.wall_s)
        cpu = statistics.median(t for r in rs for t in r.cpu_s)
        peak = max(r.peak_mb for r in rs)
        summary[m] = (batch / wall, cpu, peak)
        print(
            f"{m:<11}{rs[0].params:>12,}{batch / wall:>9.2f}{1e3 * wall:>10.1f}"
            f"{1e3 * min(t for r in rs for t in r.wall_s):>9.1f}{1e3 * cpu:>9.1f}"
            f"{peak:>15.1f}{max(r.peak_rss_mb for r in rs):>13.1f}{rs[0].bpd_init:>10.3f}"
        )
    if len(summary) == 2:
        (ff_ips, ff_cpu, ff_mem), (nf_ips, nf_cpu, nf_mem) = (summary[m] for m in MODELS)
        print(
            f"ratio factorflow/normflows: throughput {ff_ips / nf_ips:.2f}x (wall), "
            f"{nf_cpu / ff_cpu:.2f}x (CPU time), memory {ff_mem / max(nf_mem, 1e-9):.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
