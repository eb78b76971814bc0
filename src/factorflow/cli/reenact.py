"""`factorflow reenact`: make the target face say what the driver clip says."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from factorflow.cli.main import CLIError, check_device

FRAME_NAME = re.compile(r"frame_\d{4,}\.png")


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="run folder or checkpoint")
    p.add_argument("--driver", required=True, type=Path, help="video or folder of frames")
    p.add_argument("--target", required=True, type=Path, help="image, video or folder of frames")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help=".mp4, .gif, .png (a one-frame result) or a new folder for PNG frames",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out (a folder only if it holds frame_*.png alone)",
    )
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


def check_out(out: Path, force: bool, inputs: list[Path]) -> str:
    """Refuse an output that would clobber something, before any work: -> its kind."""
    from factorflow.io import check_output
    from factorflow.reenact.media import output_kind

    kind = output_kind(out)
    check_output(out, force)
    resolved = out.resolve()
    for path in inputs:
        source = path.resolve()
        if resolved == source or resolved in source.parents:
            raise CLIError(f"--out {out} holds the input {path}: choose another --out")
    if kind == "frames" and out.is_dir():
        other = [p.name for p in out.iterdir() if not FRAME_NAME.fullmatch(p.name)]
        if other:
            raise CLIError(
                f"--out {out} is a folder holding {len(other)} entries other than frames "
                f"(e.g. {sorted(other)[0]}): --force replaces only an earlier result folder; "
                "choose another --out"
            )
    return kind


def run(args: argparse.Namespace) -> int:
    from factorflow.models import load
    from factorflow.reenact.media import load_clip, write_clip

    check_device(args.device)
    if args.fps is not None and not args.fps > 0:
        raise CLIError(f"--fps {args.fps}: expected a rate above 0")
    kind = check_out(args.out, args.force, [args.checkpoint, args.driver, args.target])
    driver, fps = load_clip(args.driver)
    target, _ = load_clip(args.target)
    if kind == "image" and len(driver) != 1:
        raise CLIError(
            f"--out {args.out}: a PNG holds one frame, the driver {args.driver} has {len(driver)}; "
            "name a .mp4, a .gif or a folder"
        )
    model, config = load(args.checkpoint, args.overrides, args.device)
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
    path = write_clip(args.out, frames, args.fps or fps, audio_from=audio, replace=args.force)
    print(f"reenacted {len(frames)} frames of {args.driver.name} onto {args.target.name}: {path}")
    return 0
