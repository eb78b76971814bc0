"""Distributed only when launched that way: torchrun sets RANK/WORLD_SIZE; else rank 0 of 1.

A collective waits at most FACTORFLOW_DIST_TIMEOUT_S seconds (default 1800, torch's own) for the
other ranks: a rank that died is noticed at once (its sockets close), one that hangs after that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_true",
    "barrier",
    "broadcast_module",
    "mean_scalars",
    "pick_device",
    "setup",
    "teardown",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """train.device ("auto", "cpu", "cuda", "cuda:N") -> the device; ValueError naming the key
    when this machine has no such device."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        found = torch.cuda.device_count()
        raise ValueError(
            f"train.device={name}: this machine has {found} CUDA devices (use train.device=cpu)"
        )
    return device


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when torchrun launched us (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        timeout = timedelta(seconds=float(os.environ.get("FACTORFLOW_DIST_TIMEOUT_S", "1800")))
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", timeout=timeout)
    return DistInfo(rank, world, local_rank, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Every parameter and buffer (ActNorm's init flag included) from rank `src` to all ranks."""
    if not dist.is_initialized():
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src)


def all_true(flag: bool, device: torch.device) -> bool:
    """True on every rank only if `flag` is true on every rank."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0)


def mean_scalars(values: dict[str, float], device: torch.device) -> dict[str, float]:
    if not dist.is_initialized() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
