"""SSIM: factorflow's map against torchmetrics and pytorch-msssim on synthetic talking faces.

    python benchmarks/ssim_compare.py --size 64 --frames 16

Frames come from `factorflow synth` (its generator); each frame is scored against the next frame
of its clip (a small motion, like an output against its ground truth). Prints the largest
difference of the frame score and of the SSIM map (torchmetrics: its full map; pytorch-msssim,
which has only the valid part: the mean of ours 5 pixels in from the border), and time per call,
best of 5.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def synth_pairs(size: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N,3,H,W] x2: each frame of a small synthetic corpus and the next of its clip."""
    from factorflow.data.dataset import ClipDataset
    from factorflow.data.readers import open_reader
    from factorflow.data.synth.generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "synth", size=size, frames=frames, speakers=3, words=2)
        clips = ClipDataset(open_reader(Path(tmp) / "synth"), frames=frames)
        video = torch.stack([clips[i]["frames"] for i in range(len(clips))])
    return video[:, :-1].flatten(0, 1), video[:, 1:].flatten(0, 1)


def best_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, dict[str, float]]:
    """{library: {"score": max |diff| of frame scores, "map": of the maps,
    "seconds": per call}} for each installed library, and factorflow's own time."""
    from factorflow.metrics.image import ssim, ssim_map

    ours_map = ssim_map(a, b)
    out = {"factorflow": {"seconds": best_time(lambda: ssim(a, b)), "score": 0.0}}
    x, y = a.double() / 255, b.double() / 255
    try:
        from torchmetrics.functional.image import structural_similarity_index_measure as tm

        def run_tm():
            return tm(
                x,
                y,
                gaussian_kernel=True,
                sigma=1.5,
                kernel_size=11,
                data_range=1.0,
                reduction="none",
                return_full_image=True,
            )

        score, full = run_tm()
        out["torchmetrics"] = {  # its full map covers the frame: compare all of it
            "score": float((score - ours_map.mean((1, 2))).abs().max()),
            "map": float((full.mean(1) - ours_map).abs().max()),
            "seconds": best_time(run_tm),
        }
    except ImportError:
        pass
    try:
        from pytorch_msssim import ssim as ms

        def run_ms():
            return ms(x, y, data_range=1.0, size_average=False, win_size=11, win_sigma=1.5)

        score = run_ms()  # the mean of the valid (unpadded) map, [N,H-10,W-10]
        out["pytorch-msssim"] = {
            "score": float((score - ours_map.mean((1, 2))).abs().max()),
            "map": float((score - ours_map[:, 5:-5, 5:-5].mean((1, 2))).abs().max()),
            "seconds": best_time(run_ms),
        }
    except ImportError:
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    a, b = synth_pairs(args.size, args.frames)
    results = compare(a, b)
    mine = results["factorflow"]["seconds"]
    print(f"{len(a)} frame pairs of {args.size}x{args.size} (synth), float64, one thread")
    for name, r in results.items():
        diffs = (
            ""
            if name == "factorflow"
            else (f"max |score diff| {r['score']:.2e}, map {r['map']:.2e}, ")
        )
        print(f"{name:15s} {diffs}{1000 * r['seconds']:.1f} ms ({r['seconds'] / mine:.2f}x ours)")


if __name__ == "__main__":
    main()
