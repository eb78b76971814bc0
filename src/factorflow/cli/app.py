"""`factorflow app`: the local web app (Gradio, offline): target face + driving clip in,
reenacted video out; a benchmark tab."""

from __future__ import annotations

import argparse
from pathlib import Path

from factorflow.cli.main import CLIError, check_device

__all__ = ["add_parser", "run"]


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument(
        "--checkpoint",
        nargs="+",
        type=Path,
        default=[],
        metavar="RUN_DIR",
        help="run folders or mouth-flow folders to offer beside the shipped models",
    )
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload")
    p.add_argument("--max-seconds", type=float, default=60.0, help="longest clip")
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import logging
    import tempfile

    from factorflow.app.server import launch
    from factorflow.app.settings import AppSettings, import_gradio

    check_device(args.device)
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port {args.port}: expected 0..65535 (default 7860)")
    try:
        import_gradio()
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    for path in args.checkpoint:
        if not path.exists():
            raise CLIError(f"--checkpoint {path} does not exist")
    _check_listen(args.host, args.port)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up checks
    with tempfile.TemporaryDirectory(prefix="factorflow-app-") as workdir:
        settings = AppSettings(
            host=args.host,
            port=args.port,
            checkpoints=tuple(args.checkpoint),
            max_upload_mb=args.max_upload_mb,
            max_seconds=args.max_seconds,
            device=args.device,
            workdir=Path(workdir),
        )
        app = launch(settings)
        print(f"factorflow app: serving on {app.local_url} (Ctrl-C stops it)")
        app.block_thread()
    return 0


def _check_listen(host: str, port: int) -> None:
    """A CLIError when nothing could listen on host:port (in use, or not this machine's)."""
    import os
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CLIError(f"cannot serve on {host}:{port} ({reason}): choose another --port") from None
