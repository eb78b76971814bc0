"""Entry point of the `factorflow` console script.

Each subcommand lives in its own module under `factorflow.cli` and exposes
`add_parser(subparsers)` (registers its arguments) and `run(args) -> int`.
Modules are imported lazily so that `factorflow env` never pays for torch or video imports.

Errors are one line on stderr, `factorflow COMMAND: error: ...`: exit status 2 for bad input (a
missing or malformed file, a wrong value, an output that exists without --force), 1 for a fault
(disk full, permission denied, an internal error). `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
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


# What a collective says when another rank died.
LOST_PEER = ("Connection reset", "Connection closed", "gloo", "NCCL", "Broken pipe", "timed out")

# Commands that may run MediaPipe (real video): its C++ logging (glog/absl) is silenced.
REAL_VIDEO_COMMANDS = ("prepare", "reenact", "demo")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _quiet_native_logs() -> None:
    # Read by MediaPipe's and TensorFlow Lite's C++ logging when they load: warnings and info
    # about GPU delegates and feedback tensors mean nothing to a user. --verbose keeps them.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def describe(exc: BaseException, distributed: bool = False) -> tuple[str, int]:
    """(one-line message, exit status) for an error that ends a command."""
    text = str(exc)
    if distributed and isinstance(exc, RuntimeError) and any(k in text for k in LOST_PEER):
        return (
            "lost contact with another process of this run (it stopped or crashed; its own "
            "error is above): the checkpoints written so far are intact, rerun the same command "
            "with --resume",
            1,
        )
    if isinstance(exc, CLIError | ValueError | FileNotFoundError | FileExistsError):
        return str(exc), 2
    if isinstance(exc, NotADirectoryError | IsADirectoryError):
        return f"{exc.filename}: {exc.strerror}", 2
    if isinstance(exc, MemoryError):
        return "out of memory (try smaller sizes, batches or fewer frames)", 1
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        hint = {
            errno.ENOSPC: " (free some space, or write elsewhere; earlier outputs are intact)",
            errno.EROFS: " (write the output elsewhere)",
            errno.EACCES: " (write the output elsewhere, or fix the folder's permissions)",
        }.get(exc.errno, "")
        return f"{where}{exc.strerror or exc}{hint}", 1
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(exc).__name__}: {first} (rerun with --debug for the traceback)", 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="factorflow", description="Flow-based disentanglement for mouth reenactment."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    # The same flags after the command (`factorflow train --debug ...`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback"
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"factorflow.cli.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
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
    if args.command in REAL_VIDEO_COMMANDS and not args.verbose:
        _quiet_native_logs()
    rank = os.environ.get("RANK") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    name = f"factorflow {args.command}" + (f" (rank {rank})" if rank is not None else "")
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message, status = describe(exc, distributed=rank is not None)
        print(f"{name}: error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
