"""`factorflow train`: train any registered model on a prepared corpus (DDP under torchrun)."""

from __future__ import annotations

import argparse
from pathlib import Path

from factorflow.cli.main import CLIError
from factorflow.registry import MODELS

__all__ = ["add_parser", "run"]


def _presets() -> list[str]:
    # Listed without importing factorflow.config (torch): building the parser stays cheap.
    from importlib import resources

    files = resources.files("factorflow.presets").iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="corpus folder (synth, prepare or shard) or the http(s):// address of a shard corpus",
    )
    p.add_argument(
        "--out", required=True, type=Path, help="run folder (new, or an existing run with --resume)"
    )
    p.add_argument(
        "--config",
        default="cpu-small",
        help=f"preset ({', '.join(_presets())}; default cpu-small) or a YAML file",
    )
    p.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=None,
        help="any registered model (default: the config's model)",
    )
    p.add_argument("--max-steps", type=int, default=None, help="total steps (at least 1)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.lr=1e-4")


def run(args: argparse.Namespace) -> int:
    from factorflow.config import load_config
    from factorflow.data.shards import is_url
    from factorflow.engine.pipeline import run_training
    from factorflow.io import check_output

    if not is_url(args.data):
        args.data = Path(args.data)
        if not args.data.is_dir():
            raise CLIError(f"--data {args.data} is not a folder")
    # Only the inputs are checked here: an existing run folder is the trainer's (--resume).
    check_output(args.out, True, inputs=[] if is_url(args.data) else [args.data])
    if args.max_steps is not None and args.max_steps < 1:
        raise CLIError(f"--max-steps {args.max_steps}: expected at least 1")
    overrides = list(args.overrides)
    if args.model:
        overrides.append(f"model={args.model}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    config = load_config(args.config, overrides)
    result = run_training(
        config, args.data, args.out, resume=args.resume, progress=not args.no_progress
    )
    if result.checkpoint is not None:
        shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(result.val.items()))
        print(
            f"trained {config.model} to step {result.step} ({result.images_per_s:.1f} images/s); "
            f"checkpoint {result.checkpoint}; val {shown or 'n/a'}"
        )
    return 0
