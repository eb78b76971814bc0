"""Judge training speed at 1 vs 2 torch threads, on an idle machine and beside a busy core.

    .venv/bin/python benchmarks/judge_threads.py --steps 60

The evaluation's judges (a 3-layer conv net on 24x32 mouth crops, batch 64) are trained under
`factorflow.runtime.torch_threads(1)`; this prints seconds per step and the 2-thread/1-thread
ratio, with and without a second process spinning one core (as another job would).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _per_step(threads: int, steps: int) -> float:
    import torch

    from factorflow.metrics.classifiers import train_mouth_regressor

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (4096, 3, 64, 64), dtype=torch.uint8, generator=gen)
    factors = torch.randn(4096, 3, generator=gen)
    train_mouth_regressor(frames, factors, steps=5)  # warm-up
    start = time.perf_counter()
    train_mouth_regressor(frames, factors, steps=steps)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (other jobs on this machine)")
    print("| second core | 1 thread s/step | 2 threads s/step | 2/1 ratio |")
    print("|---|---|---|---|")
    for busy in (False, True):
        stop = mp.Event()
        spinner = mp.Process(target=_spin, args=(stop,)) if busy else None
        if spinner is not None:
            spinner.start()
        try:
            one, two = _per_step(1, args.steps), _per_step(2, args.steps)
        finally:
            stop.set()
            if spinner is not None:
                spinner.join()
        label = "spun by this script" if busy else "as found"
        print(f"| {label} | {one:.3f} | {two:.3f} | {two / one:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
