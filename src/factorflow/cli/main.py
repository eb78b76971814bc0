"""Entry point of the `factorflow` console script.

Each subcommand lives in its own module under `factorflow.cli` and exposes
`add_parser(subparsers)` (registers its arguments) and `run(args) -> int`.
Modules are imported lazily so that `factorflow env` never pays for torch or video imports.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = {
    "synth": "Synthetic talking faces in LRW frame layout, with ground-truth factors.",
    "prepare": "Real video -> aligned face crops in LRW frame layout.",
    "train": "Train a model (glow, af, mi, hybrid).",
    "sample": "Sample a grid of images from a trained flow.",
    "reenact": "Drive a target face with a driver clip's mouth.",
    "evaluate": "Metrics and baselines on the synthetic test split.",
    "demo": "The main job on the built-in default.",
    "env": "Versions of Python, torch, factorflow and optional extras.",
}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="factorflow", description="Flow-based disentanglement for mouth reenactment."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"factorflow.cli.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_parser(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides after an option (`train --data D a=1 --config c b=2`): argparse stops
    # the positional list at the first option and leaves the rest over.
    if extra and hasattr(args, "overrides") and all("=" in e and e[0] != "-" for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._module.run(args) or 0)
    except (CLIError, FileNotFoundError, ValueError) as exc:
        print(f"factorflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"factorflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
