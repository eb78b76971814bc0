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
import contextlib
import errno
import importlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

__all__ = [
    "COMMANDS",
    "EPILOG",
    "LOST_PEER",
    "NATIVE_NOISE",
    "REAL_VIDEO_COMMANDS",
    "CLIError",
    "build_parser",
    "check_device",
    "describe",
    "main",
    "quiet_native_logs",
]

# name -> (one line of purpose, an example). The order is the order of `factorflow --help`.
COMMANDS = {
    "synth": (
        "Synthetic talking faces in LRW frame layout, with ground-truth factors.",
        "factorflow synth --out data/synth64 --size 64 --speakers 30 --words 8 --landmarks",
    ),
    "prepare": (
        "Real video -> aligned face crops in LRW frame layout, with landmarks.",
        "factorflow prepare --input my_videos/ --out data/mine --layout videos --size 64",
    ),
    "shard": (
        "A corpus folder (any layout) -> tar shards of whole clips, for streaming.",
        "factorflow shard --data data/synth64 --out data/synth64-shards",
    ),
    "train": (
        "Train any registered model (--model) on a corpus; DDP under torchrun.",
        "factorflow train --data data/mine --out runs/mouthflow --model mouthflow",
    ),
    "sample": (
        "Samples, traversals of the mouth factor or word clips from a trained model.",
        "factorflow sample --checkpoint runs/af --out samples.png --n 16 --temperature 0.7",
    ),
    "reenact": (
        "Drive a target face with a driver clip's mouth (default: the shipped mouth flow).",
        "factorflow reenact --driver talk.mp4 --target person.jpg --out out.mp4 --report",
    ),
    "evaluate": (
        "Metrics and baselines with bootstrap intervals on a synthetic test split.",
        "factorflow evaluate --checkpoint runs/af --data data/synth64 --out runs/af/eval.json",
    ),
    "demo": (
        "The main job on the built-in default: evaluate and reenact, one HTML page.",
        "factorflow demo --out runs/demo",
    ),
    "checkpoint": (
        "Verify a checkpoint, or record the SHA-256 of its files (--record).",
        "factorflow checkpoint runs/af",
    ),
    "env": ("Versions of Python, torch, factorflow and optional extras.", "factorflow env"),
    "app": (
        "A local web app (offline): target face + driving clip in, reenacted video out.",
        "factorflow app --port 7860",
    ),
}

EPILOG = """start here:
  make demo                     the main job on the built-in default -> runs/demo/index.html
  factorflow reenact --driver talk.mp4 --target face.jpg --out out.mp4
  factorflow COMMAND --help     each command's options and an example
"""


# What a collective says when another rank died.
LOST_PEER = ("Connection reset", "Connection closed", "gloo", "NCCL", "Broken pipe", "timed out")

# Commands that may run MediaPipe (real video): its C++ logging (glog/absl) is silenced.
REAL_VIDEO_COMMANDS = ("prepare", "reenact", "demo", "app")


class CLIError(ValueError):
    """A user-facing error: printed as one line, exit status 2. (A ValueError, so that it is one
    under `python -m factorflow.cli.main` too, where this module runs as __main__.)"""


# Info and warning lines of glog/absl/TensorFlow Lite, which MediaPipe's C++ writes straight to
# file descriptor 2 (some before any log setting can apply): noise to a user. Errors pass.
NATIVE_NOISE = re.compile(
    rb"(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] |INFO: Created TensorFlow Lite|"
    rb"WARNING: All log messages before absl::InitializeLog)"
)


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Drop MediaPipe's C++ info/warning lines from stderr (fd 2) while the block runs."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except (OSError, ValueError):  # no usable fd 2 (embedded use): leave stderr alone
        yield
        return

    def clean(line: bytes) -> bytes:
        # a native line may follow a progress bar's partial line: keep the bar, drop the rest
        found = NATIVE_NOISE.search(line)
        return line if found is None else line[: found.start()]

    def pump() -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            kept = [clean(line) + (b"" if NATIVE_NOISE.search(line) else b"\n") for line in lines]
            # a progress bar's partial line (\r updates) goes out at once
            if pending and not NATIVE_NOISE.search(pending):
                kept.append(pending)
                pending = b""
            if kept:
                os.write(saved, b"".join(kept))
        if pending:
            os.write(saved, clean(pending))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump drains and stops
        thread.join(timeout=5)
        os.close(read_end)
        os.close(saved)


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
    if isinstance(exc, FloatingPointError):  # a model that decodes NaN: a fault, said plainly
        return str(exc), 1
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


def check_device(name: str) -> str:
    """A --device torch can use here, or a CLIError saying what is available."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise CLIError(f"--device {name!r}: expected cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {name}: no CUDA device is available here (use --device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CLIError(f"--device {name}: only {torch.cuda.device_count()} CUDA devices here")
    if device.type not in ("cpu", "cuda"):
        raise CLIError(f"--device {name!r}: expected cpu, cuda or cuda:N")
    return name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="factorflow",
        description="Flow-based disentanglement for mouth reenactment.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    for name, (help_text, example) in COMMANDS.items():
        module = importlib.import_module(f"factorflow.cli.{name}")
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
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
    quiet = args.command in REAL_VIDEO_COMMANDS and not args.verbose
    rank = os.environ.get("RANK") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    name = f"factorflow {args.command}" + (f" (rank {rank})" if rank is not None else "")
    try:
        with quiet_native_logs() if quiet else contextlib.nullcontext():
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
