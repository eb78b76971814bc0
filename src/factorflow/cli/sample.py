"""`factorflow sample`: a grid of samples from a trained flow at a temperature."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from factorflow.cli.main import check_device


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="run folder or checkpoint folder")
    p.add_argument("--out", required=True, type=Path, help="PNG file")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import torch

    from factorflow.images import save_grid
    from factorflow.io import check_output
    from factorflow.models import load

    if args.out.suffix.lower() != ".png":
        raise ValueError(f"--out {args.out}: expected a .png file name")
    check_device(args.device)
    check_output(args.out, args.force)
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
