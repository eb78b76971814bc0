"""Process-wide runtime settings that a step may change for itself and must give back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with at most `n` intra-op torch threads, then restore the previous number.

    Small networks (the judges: a 3-layer conv net on 24x32 crops) run no faster on two threads
    than on one, and several times slower when another process holds the second core
    (`benchmarks/README.md`, judge threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(n, before)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
