"""`factorflow sample`: a grid of samples from a trained flow at a temperature."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="run folder or checkpoint folder")
    p.add_argument("--out", required=True, type=Path, help="PNG file")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import torch

    from factorflow.engine.trainer import load_model
    from factorflow.flows.likelihood import postprocess
    from factorflow.images import save_grid

    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    model, config = load_model(args.checkpoint, args.device)
    if model.flow.config.cond_channels > 0:
        raise ValueError(
            f"{args.checkpoint} is a {config.model} model: its flow's priors need a condition "
            "taken from a face, so it has no unconditional samples (use `factorflow reenact`)"
        )
    torch.manual_seed(args.seed)
    with torch.no_grad():
        x = model.flow.sample(args.n, temperature=args.temperature)
    save_grid(postprocess(x, config.flow.n_bits), args.out, nrow=math.ceil(math.sqrt(args.n)))
    print(f"wrote {args.n} samples at temperature {args.temperature} to {args.out}")
    return 0
