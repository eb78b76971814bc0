"""The GPU recipe at the paper preset: fp32 and bf16 autocast, channels_last, with and without
invertible recomputation, normflows' Glow beside it; images/s, peak memory and the largest batch
that fits, as one table.

    bash benchmarks/gpu.sh                 # one GPU, paper preset, under 8 minutes
    python benchmarks/gpu_recipe.py --smoke   # tiny sizes on CPU (CI runs this so it cannot rot)

Each variant trains on one fixed dequantised batch (forward, backward, Adam); images/s is the
median over timed steps after warm-up. Peak memory is `torch.cuda.max_memory_allocated` during
training over what model and optimiser hold (on CPU: not measured, "-"). The largest batch doubles
from the base batch until a step runs out of memory or the cap is reached.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from flow_throughput import BUILDERS, N_BITS  # noqa: E402  (a sibling script)

PAPER = {"image_size": 64, "levels": 4, "steps": 32, "hidden": 512, "batch": 32}
SMOKE = {"image_size": 16, "levels": 2, "steps": 2, "hidden": 16, "batch": 4}
# name: (library, autocast bf16, invertible recomputation)
VARIANTS = {
    "factorflow fp32": ("factorflow", False, "none"),
    "factorflow bf16": ("factorflow", True, "none"),
    "factorflow fp32 recompute": ("factorflow", False, "all"),
    "factorflow bf16 recompute": ("factorflow", True, "all"),
    "normflows fp32": ("normflows", False, "none"),
}


class Run:
    def __init__(self, name: str, cfg: dict, batch: int, device: torch.device, compile_: bool):
        from factorflow.flows import preprocess

        library, self.bf16, recompute = VARIANTS[name]
        torch.manual_seed(0)
        self.device = device
        self.model, loss = BUILDERS[library]({**cfg, "recompute": recompute})
        self.model.to(device).train()
        if device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        self.loss = torch.compile(loss) if compile_ else loss
        size = cfg["image_size"]
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
        self.x = preprocess(images, N_BITS, generator=gen).to(device)
        if device.type == "cuda":
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        with torch.no_grad():
            self.loss(self.x)  # data-dependent init

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def step(self) -> float:
        start = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.loss(self.x)
        loss.float().backward()
        self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def measure(name: str, cfg: dict, args: argparse.Namespace, device: torch.device) -> dict:
    _free(device)
    run = Run(name, cfg, cfg["batch"], device, args.compile)
    base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    for _ in range(args.warmup):
        run.step()
    times = [run.step() for _ in range(args.steps)]
    peak = None
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    del run
    return {"img_s": cfg["batch"] / statistics.median(times), "peak_mb": peak}


def largest_batch(name: str, cfg: dict, args: argparse.Namespace, device: torch.device) -> str:
    batch, fits = cfg["batch"], None
    while batch <= args.max_batch:
        _free(device)
        try:
            run = Run(name, cfg, batch, device, False)
            run.step()
            fits = batch
            del run
        except torch.OutOfMemoryError:
            break
        batch *= 2
    _free(device)
    if fits is None:
        return "none"
    return f">={fits}" if fits * 2 > args.max_batch else str(fits)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes, CPU allowed (CI)")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--max-batch", type=int, default=None, help="cap of the batch search")
    p.add_argument("--compile", action="store_true", help="torch.compile the loss (slow start)")
    args = p.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" and not args.smoke:
        p.error("no GPU here: run with --smoke for the CPU check, or on a GPU machine")
    cfg = dict(SMOKE if args.smoke else PAPER)
    args.steps = args.steps or (2 if args.smoke else 10)
    args.max_batch = args.max_batch or (8 if args.smoke else 1024)
    if args.smoke:
        args.warmup = min(args.warmup, 1)
    warnings.filterwarnings("ignore", message=".*torch.lu is deprecated.*")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        gpu = torch.cuda.get_device_name(device)
    else:
        gpu = "cpu"
    print(f"device={gpu} torch={torch.__version__} config={cfg} compile={args.compile}")
    print(f"{'variant':<28}{'img/s':>9}{'peak MB':>10}{'largest batch':>15}")
    rows = {}
    for name in VARIANTS:
        row = measure(name, cfg, args, device)
        row["largest"] = largest_batch(name, cfg, args, device)
        rows[name] = row
        peak = "-" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
        print(f"{name:<28}{row['img_s']:>9.1f}{peak:>10}{row['largest']:>15}", flush=True)
    ref = rows["normflows fp32"]
    for name in ("factorflow fp32", "factorflow bf16", "factorflow bf16 recompute"):
        line = f"{name} / normflows fp32: throughput {rows[name]['img_s'] / ref['img_s']:.2f}x"
        if ref["peak_mb"]:
            line += f", memory {rows[name]['peak_mb'] / ref['peak_mb']:.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
