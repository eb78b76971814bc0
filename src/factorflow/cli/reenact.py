"""`factorflow reenact`: make the target face say what the driver clip says.

One interface for every model; the model's registry entry says how it meets real video
(`ModelSpec.pipeline`): "mouth-paste" models (the shipped mouth flow) warp the mouth at the
frame's own resolution and paint its interior, "crops" models reenact aligned face crops that are
pasted back. With `--no-align` the inputs are already model-sized crops (synthetic data) and any
model runs on them as `factorflow evaluate` does.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from factorflow.cli.main import CLIError, check_device

__all__ = ["FRAME_NAME", "LENGTHS", "SHOWN", "add_parser", "check_out", "report_path", "run"]

FRAME_NAME = re.compile(r"frame_\d{4,}\.png")
LENGTHS = ("loop", "bounce", "cut")


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="run folder or checkpoint (default: the shipped real-face mouth flow)",
    )
    p.add_argument("--driver", required=True, type=Path, help="video, GIF or folder of frames")
    p.add_argument(
        "--target", required=True, type=Path, help="image, video, GIF or folder of frames"
    )
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
    p.add_argument(
        "--face", type=int, default=0, help="which face of the target: 0 the largest, 1 the next"
    )
    p.add_argument("--driver-face", type=int, default=0, help="which face of the driver")
    p.add_argument(
        "--length",
        choices=LENGTHS,
        default="loop",
        help="a target video shorter than the driver: loop it, play it back and forth, or cut "
        "the result to the target's length (default: loop)",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="measure lip sync on the output (MediaPipe) and write OUT.json beside it",
    )
    p.add_argument(
        "--adapt-steps",
        type=int,
        default=0,
        help="mouth-paste models: fine-tune on the target video's own frames for N steps first",
    )
    p.add_argument(
        "--interior",
        choices=("flow", "driver"),
        default="flow",
        help="mouth-paste models: the mouth's inside painted by the flow, or the driver's own "
        "interior warped into the new lips and colour-matched (default: flow)",
    )
    p.add_argument("--max-frames", type=int, default=None, help="only the driver's first N")
    p.add_argument("--device", default="cpu")
    p.add_argument("--fps", type=float, default=None, help="output frame rate (default: driver's)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="use-time keys: mouthflow.temperature=0.8; mi.fine_latents=prior",
    )


def report_path(out: Path) -> Path:
    """Where `--report` writes: OUT.json beside OUT (a folder `res/` gives `res.json`)."""
    return out.with_suffix(".json") if out.suffix else out.with_name(out.name + ".json")


def check_out(out: Path, force: bool, inputs: list[Path]) -> str:
    """Refuse an output that would clobber something, before any work: -> its kind."""
    from factorflow.io import check_output
    from factorflow.reenact.media import output_kind

    try:
        kind = output_kind(out)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    check_output(out, force, inputs=inputs)
    if kind == "frames" and out.is_dir():
        other = [p.name for p in out.iterdir() if not FRAME_NAME.fullmatch(p.name)]
        if other:
            raise CLIError(
                f"--out {out} is a folder holding {len(other)} entries other than frames "
                f"(e.g. {sorted(other)[0]}): --force replaces only an earlier result folder; "
                "choose another --out"
            )
    return kind


def _check_args(args: argparse.Namespace) -> None:
    check_device(args.device)
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise CLIError(f"--fps {args.fps}: expected a rate above 0")
    if args.max_frames is not None and args.max_frames < 1:
        raise CLIError(f"--max-frames {args.max_frames}: expected at least 1")
    for option, value in (
        ("--face", args.face),
        ("--driver-face", args.driver_face),
        ("--adapt-steps", args.adapt_steps),
    ):
        if value < 0:
            raise CLIError(f"{option} {value}: expected 0 or more")
    if args.no_align and args.report:
        raise CLIError(
            "--report measures real video with face landmarks; --no-align crops are judged "
            "against ground truth by `factorflow evaluate`"
        )


def run(args: argparse.Namespace) -> int:
    from factorflow.io import check_output
    from factorflow.models import load
    from factorflow.reenact import streaming
    from factorflow.reenact.mouthreenact import SHIPPED
    from factorflow.registry import spec

    _check_args(args)
    checkpoint = args.checkpoint or SHIPPED
    inputs = [checkpoint, args.driver, args.target]
    check_out(args.out, args.force, inputs)
    if args.report:
        check_output(report_path(args.out), args.force, "--report", inputs)
    streaming.check_input(args.driver, "driver")
    streaming.check_input(args.target, "target")
    model, config = load(checkpoint, args.overrides, args.device)
    pipeline = spec(config.model).pipeline
    if args.adapt_steps and (pipeline != "mouth-paste" or args.no_align):
        raise CLIError(
            f"--adapt-steps adapts a mouth-paste model on real video; a {config.model} model "
            f"{'on --no-align crops ' if args.no_align else ''}is not one"
        )
    if args.no_align:
        return _run_crops(args, model)
    if pipeline == "mouth-paste":
        return _run_mouth_paste(args, model)
    return _run_face_crops(args, model, config)


def _driver_and_target(args: argparse.Namespace):
    from factorflow.reenact.media import load_clip

    driver, fps = load_clip(args.driver)
    target, _ = load_clip(args.target)
    driver = driver[: args.max_frames]
    if args.length == "cut" and len(target) > 1:
        driver = driver[: len(target)]
    return driver, target, fps


def _run_crops(args: argparse.Namespace, model) -> int:
    from factorflow.reenact.crops import reenact_crops
    from factorflow.reenact.media import write_clip

    driver, target, fps = _driver_and_target(args)
    names = (f"driver {args.driver}", f"target {args.target}")
    frames = reenact_crops(model, driver, target, args.device, args.side_by_side, names)
    path = write_clip(args.out, frames, args.fps or fps, replace=args.force)
    print(f"reenacted {len(frames)} frames of {args.driver.name} onto {args.target.name}: {path}")
    return 0


def _run_face_crops(args: argparse.Namespace, model, config) -> int:
    from tqdm import tqdm

    from factorflow.reenact.media import write_clip
    from factorflow.reenact.realvideo import reenact_video

    driver, target, fps = _driver_and_target(args)
    out = reenact_video(
        model,
        config,
        driver,
        target,
        fps=fps,
        device=args.device,
        progress=lambda it, total: tqdm(it, total=total, desc="paste back", unit="frame"),
        face=args.face,
        driver_face=args.driver_face,
        length=args.length,
        names=(str(args.driver), str(args.target)),
    )
    frames = out.side_by_side if args.side_by_side else out.frames
    audio = args.driver if args.driver.is_file() else None
    path = write_clip(args.out, frames, args.fps or fps, audio_from=audio, replace=args.force)
    print(f"reenacted {len(frames)} frames of {args.driver.name} onto {args.target.name}: {path}")
    if args.report:
        from factorflow.metrics.lipsync import lip_sync_metrics

        _write_report(args, lip_sync_metrics(driver, out, target))
    return 0


def _run_mouth_paste(args: argparse.Namespace, model) -> int:
    import torch
    from tqdm import tqdm

    from factorflow.reenact.mouthreenact import adapted_painter, reenact_mouth

    # The flow runs on small batches of small crops: one thread is as fast, and leaves the
    # other core to MediaPipe and the video codecs.
    torch.set_num_threads(1)
    painter = model.painter()
    if args.adapt_steps:
        painter, adapted = adapted_painter(model, args.target, args.adapt_steps, args.face)
        print(
            f"adapted the mouth flow on {adapted['pairs']} frame pairs of "
            f"{args.target.name} ({adapted['steps']} steps, {adapted['seconds']:.0f} s)"
        )
    summary = reenact_mouth(
        args.driver,
        args.target,
        args.out,
        painter,
        model.crop_size,
        face=args.face,
        driver_face=args.driver_face,
        side_by_side=args.side_by_side,
        measure=args.report,
        max_frames=args.max_frames,
        fps=args.fps,
        length=args.length,
        progress=lambda it, total: tqdm(it, total=total, desc="reenact", unit="chunk"),
        replace=args.force,
        interior=args.interior,
    )
    print(f"{args.driver.name} -> {args.target.name}: {summary.line()}; wrote {args.out}")
    if summary.metrics is not None:
        _write_report(args, summary.metrics)
    return 0


# The figures printed after a report, in order (the JSON holds them all).
SHOWN = {
    "opening_corr": "opening r",
    "range_ratio": "range ratio",
    "sharpness_ratio": "sharpness ratio",
    "identity_shift_iod": "identity shift (IOD)",
    "grid_ratio": "grid",
    "lip_area_ratio": "lip area",
    "lips_kept": "lips kept",
    "temporal_ratio": "temporal",
    "identity_distance": "id dist",
}


def _write_report(args: argparse.Namespace, metrics: dict) -> None:
    from factorflow.io import atomic_write_text, strict_json

    report = report_path(args.out)
    atomic_write_text(report, strict_json(metrics))
    parts = [
        f"{label} {metrics[k]:.3g}"
        for k, label in SHOWN.items()
        if isinstance(metrics.get(k), float | int)
    ]
    print(f"{'; '.join(parts)}; {report}")
    for note in metrics.get("realism_notes", []):
        print(note)
