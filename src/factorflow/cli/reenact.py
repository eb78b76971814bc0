"""`factorflow reenact`: make the target face say what the driver clip says."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="run folder or checkpoint")
    p.add_argument("--driver", required=True, type=Path, help="video or folder of frames")
    p.add_argument("--target", required=True, type=Path, help="image, video or folder of frames")
    p.add_argument("--out", required=True, type=Path, help=".mp4, .gif or a folder of PNG frames")
    p.add_argument(
        "--no-align",
        action="store_true",
        help="inputs are already model-sized crops (synthetic data): no face detection",
    )
    p.add_argument("--side-by-side", action="store_true", help="driver | target | result")
    p.add_argument("--device", default="cpu")
    p.add_argument("--fps", type=float, default=None, help="output frame rate (default: driver's)")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="use-time keys: mi.fine_latents=prior"
    )


def run(args: argparse.Namespace) -> int:
    from factorflow.models import load
    from factorflow.reenact.media import load_clip, write_clip

    model, config = load(args.checkpoint, args.overrides, args.device)
    driver, fps = load_clip(args.driver)
    target, _ = load_clip(args.target)
    if args.no_align:
        from factorflow.reenact.crops import reenact_crops

        names = (f"driver {args.driver}", f"target {args.target}")
        frames = reenact_crops(model, driver, target, args.device, args.side_by_side, names)
        audio = None
    else:
        from tqdm import tqdm

        from factorflow.reenact.realvideo import reenact_video

        out = reenact_video(
            model,
            config,
            driver,
            target,
            fps=fps,
            device=args.device,
            progress=lambda it, total: tqdm(it, total=total, desc="paste back", unit="frame"),
        )
        frames = out.side_by_side if args.side_by_side else out.frames
        audio = args.driver
    path = write_clip(args.out, frames, args.fps or fps, audio_from=audio)
    print(f"reenacted {len(frames)} frames of {args.driver.name} onto {args.target.name}: {path}")
    return 0
