"""`factorflow reenact`: make the target face say what the driver clip says."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from factorflow.cli.main import CLIError, check_device

FRAME_NAME = re.compile(r"frame_\d{4,}\.png")


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="run folder or checkpoint (default: the shipped real-face mouth flow)",
    )
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
    p.add_argument("--face", type=int, default=0, help="which face: 0 the largest, 1 the next...")
    p.add_argument(
        "--report",
        action="store_true",
        help="measure lip sync on the output (MediaPipe) and write OUT.json beside it",
    )
    p.add_argument(
        "--adapt-steps",
        type=int,
        default=0,
        help="mouth flow only: fine-tune on the target video's own frames for N steps first",
    )
    p.add_argument("--max-frames", type=int, default=None, help="only the driver's first N")
    p.add_argument("--device", default="cpu")
    p.add_argument("--fps", type=float, default=None, help="output frame rate (default: driver's)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="use-time keys: mi.fine_latents=prior; mouthflow.temperature=0.8",
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


def _is_mouthflow(checkpoint: Path | None) -> bool:
    from factorflow.models.mouthflow import is_mouthflow

    return checkpoint is None or is_mouthflow(checkpoint)


def run(args: argparse.Namespace) -> int:
    from factorflow.models import load
    from factorflow.reenact.media import load_clip, write_clip

    check_device(args.device)
    if args.fps is not None and not args.fps > 0:
        raise CLIError(f"--fps {args.fps}: expected a rate above 0")
    if not args.no_align and _is_mouthflow(args.checkpoint):
        inputs = [p for p in (args.checkpoint, args.driver, args.target) if p is not None]
        check_out(args.out, args.force, inputs)
        return _run_mouthflow(args)
    if args.checkpoint is None:
        raise CLIError("--no-align needs --checkpoint (a model trained on aligned crops)")
    if args.adapt_steps:
        raise CLIError(
            "--adapt-steps adapts the mouth flow: leave out --checkpoint or give a mouth-flow one"
        )
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


def _run_mouthflow(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from factorflow.cli.main import CLIError
    from factorflow.io import atomic_write_text
    from factorflow.reenact.mouthreenact import adapted_painter, load_painter, reenact_mouth

    if args.out.suffix.lower() not in (".mp4", ".gif"):
        raise CLIError(f"--out {args.out}: real-video reenactment writes .mp4 or .gif")
    if args.adapt_steps < 0:
        raise CLIError(f"--adapt-steps must be >= 0, got {args.adapt_steps}")
    temperature = None
    for item in args.overrides:
        key, _, value = item.partition("=")
        if key != "mouthflow.temperature":
            raise CLIError(f"unknown mouth-flow setting {key!r}: choose mouthflow.temperature")
        try:
            temperature = float(value)
        except ValueError:
            raise CLIError(f"{item}: expected a number") from None
    try:
        if args.adapt_steps:
            painter, size, adapted = adapted_painter(
                args.checkpoint, args.target, args.adapt_steps, args.face, temperature=temperature
            )
            print(
                f"adapted the mouth flow on {adapted['pairs']} frame pairs of "
                f"{args.target.name} ({adapted['steps']} steps, {adapted['seconds']:.0f} s)"
            )
        else:
            painter, size = load_painter(args.checkpoint, temperature)
        summary = reenact_mouth(
            args.driver,
            args.target,
            args.out,
            painter,
            size,
            face=args.face,
            side_by_side=args.side_by_side,
            measure=args.report,
            max_frames=args.max_frames,
            fps=args.fps,
            progress=lambda it, total: tqdm(it, total=total, desc="reenact", unit="chunk"),
        )
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    print(f"{args.driver.name} -> {args.target.name}: {summary.line()}; wrote {args.out}")
    if summary.metrics is not None:
        m = summary.metrics
        report = args.out.with_suffix(".json")
        atomic_write_text(report, json.dumps(m, indent=1))
        print(
            f"opening r {m['opening_corr']:.2f} (untouched target {m['target_opening_corr']:.2f}), "
            f"range ratio {m['range_ratio']:.2f}, sharpness ratio {m['sharpness_ratio']:.2f}, "
            f"identity shift {m['identity_shift_iod']:.4f} IOD (p95 "
            f"{m['identity_shift_iod_p95']:.4f}), outside max diff {m['outside_max_diff']}; "
            f"{report}"
        )
    return 0
