"""`factorflow sample`: a grid of samples from a trained flow at a temperature, or controlled
generation on a target face (`--mode traverse|word|draw`, see `factorflow.control`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from factorflow.cli.main import check_device

__all__ = ["MODES", "add_parser", "run"]

MODES = ("samples", "traverse", "word", "draw")


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="run folder or checkpoint folder")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="PNG file (samples, traverse: the grid, its GIF beside it; draw); word: .gif, .mp4 "
        "or a folder of frames",
    )
    p.add_argument("--force", action="store_true", help="replace existing outputs (and --stats)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="samples",
        help="samples: from the prior (default); traverse: move the target's mouth factor along "
        "its main directions; word: the target saying --word; draw: mouths from the conditional "
        "prior given --condition",
    )
    p.add_argument("--n", type=int, default=16, help="samples; draw: draws per condition frame")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    c = p.add_argument_group("controlled generation (--mode traverse, word, draw)")
    c.add_argument("--target", type=Path, help="the face: an image, a clip folder or a video")
    c.add_argument("--frame", type=int, default=0, help="which frame of --target is the face")
    c.add_argument("--data", type=Path, help="prepared corpus: its training clips give the stats")
    c.add_argument(
        "--stats", type=Path, help="folder of stats: loaded if present, else made from --data here"
    )
    c.add_argument("--max-clips", type=int, help="training clips read for the stats (default all)")
    c.add_argument("--directions", type=int, default=3, help="traverse: directions (rows)")
    c.add_argument("--steps", type=int, default=7, help="traverse: steps per direction (columns)")
    c.add_argument("--extent", type=float, default=2.5, help="traverse: +-standard deviations")
    c.add_argument("--word", help="word: a word of the corpus's vocabulary")
    c.add_argument(
        "--gain",
        default="auto",
        help="word: scale of the word's motion (auto: a single training clip's amplitude)",
    )
    c.add_argument(
        "--sequence",
        choices=("mean", "medoid"),
        default="mean",
        help="word: the word's motion as the mean over its training clips, or the clip nearest it",
    )
    c.add_argument("--fps", type=float, default=8.0, help="frames per second of GIF/mp4 outputs")
    c.add_argument("--condition", type=Path, help="draw: frame(s) whose condition is used")
    c.add_argument(
        "--renderer",
        choices=("auto", "model", "flow"),
        default="auto",
        help="traverse, word: the model's own mouth renderer, or the flow latent change that came "
        "with the factor's change in training (a map fitted with the stats); auto: flow for "
        "models with a plain Glow flow (AF, motioncode), else model",
    )


def run(args: argparse.Namespace) -> int:
    check_device(args.device)
    if args.mode == "samples":
        return _samples(args)
    return _control(args)


def _samples(args: argparse.Namespace) -> int:
    import torch

    from factorflow.images import save_grid
    from factorflow.io import check_output
    from factorflow.models import load

    if args.out.suffix.lower() != ".png":
        raise ValueError(f"--out {args.out}: expected a .png file name")
    check_output(args.out, args.force, inputs=[args.checkpoint])
    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    if not args.temperature >= 0:
        raise ValueError(f"--temperature must be >= 0, got {args.temperature}")
    model, _ = load(args.checkpoint, device=args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    frames = model.sample(args.n, args.temperature, generator)
    save_grid(frames, args.out, nrow=math.ceil(math.sqrt(args.n)))
    print(f"wrote {args.n} samples at temperature {args.temperature} to {args.out}")
    return 0


def _control(args: argparse.Namespace) -> int:
    import torch

    from factorflow import control
    from factorflow.control.inputs import load_face, load_frames, resolve_stats
    from factorflow.images import grid, save_png
    from factorflow.io import check_output
    from factorflow.models import load
    from factorflow.reenact.media import output_kind, write_clip

    if args.target is None:
        raise ValueError(f"--mode {args.mode} needs --target (an image, clip folder or video)")
    if not args.target.exists() and not any(args.target.parent.glob(f"{args.target.name}_*")):
        raise FileNotFoundError(f"--target {args.target} does not exist")
    outs = [args.out]
    if args.mode in ("traverse", "draw") and args.out.suffix.lower() != ".png":
        raise ValueError(f"--out {args.out}: --mode {args.mode} writes a .png grid")
    if args.mode == "traverse":
        outs.append(args.out.with_suffix(".gif"))
    if args.mode == "word":
        if not args.word:
            raise ValueError("--mode word needs --word (a word of the corpus's vocabulary)")
        if output_kind(args.out) == "image":
            raise ValueError(f"--out {args.out}: a word clip is a .gif, an .mp4 or a folder")
    if args.mode == "draw" and args.condition is None:
        raise ValueError("--mode draw needs --condition (a frame, a clip or a video)")
    inputs = [args.checkpoint, args.target, args.data, args.condition]
    for out in outs:
        check_output(out, args.force, inputs=[*inputs, args.stats])
    if args.stats is not None:
        check_output(args.stats, True, "--stats", inputs=inputs)

    model, config = load(args.checkpoint, device=args.device)
    face = load_face(args.target, args.frame, model.image_size)
    if args.mode == "draw":
        if not args.temperature >= 0:
            raise ValueError(f"--temperature must be >= 0, got {args.temperature}")
        conditions = load_frames(args.condition, model.image_size, "--condition")[:8]
        generator = torch.Generator(device=args.device).manual_seed(args.seed)
        rows = control.draws(model, face, conditions, args.n, args.temperature, generator)
        save_png(grid(rows.flatten(0, 1), nrow=rows.shape[1]), args.out, replace=args.force)
        print(
            f"wrote {args.out}: {len(rows)} condition frame(s) (first column), {args.n} draws each"
        )
        return 0

    renderer = args.renderer
    if renderer == "auto":
        renderer = "model" if model.plain_glow() is None else "flow"
    flow_map = renderer == "flow"
    stats = resolve_stats(
        model, config, args.data, args.stats, args.max_clips, args.force, flow_map
    )
    if args.mode == "traverse":
        frames = control.traverse(
            model, face, stats, args.directions, args.steps, args.extent, renderer
        )
        save_png(grid(frames.flatten(0, 1), nrow=args.steps), args.out, replace=args.force)
        write_clip(outs[1], control.sweep_frames(frames), args.fps, replace=args.force)
        print(
            f"wrote {args.out} ({args.directions} directions x {args.steps} steps, "
            f"-{args.extent}..+{args.extent} sd) and {outs[1]}"
        )
        return 0
    gain = _gain(args.gain)
    clip = control.word_clip(model, face, stats, args.word, gain, args.sequence, renderer)
    write_clip(args.out, clip.permute(0, 2, 3, 1).numpy(), args.fps, replace=args.force)
    print(f"wrote {args.out}: {len(clip)} frames of the target saying {args.word.upper()}")
    return 0


def _gain(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--gain {text}: expected a number or auto") from None
