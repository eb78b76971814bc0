"""`factorflow env`: versions for bug reports."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform

__all__ = ["CORE", "EXTRAS", "add_parser", "run"]

EXTRAS = [
    "av",
    "mediapipe",
    "opencv-contrib-python",
    "tensorboard",
    "normflows",
    "scikit-video",
    "gradio",  # the app extra
    "playwright",  # drives the system Chromium in the app's browser test
]
CORE = ["torch", "numpy", "pyyaml", "safetensors", "pillow", "tqdm"]


def add_parser(p: argparse.ArgumentParser) -> None:
    del p


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    import torch

    import factorflow

    print(f"python      {platform.python_version()} ({platform.platform()})")
    print(f"factorflow  {factorflow.__version__}")
    cuda = torch.version.cuda or "none"
    print(f"torch       {torch.__version__} (cuda {cuda}, available {torch.cuda.is_available()})")
    print(f"threads     {torch.get_num_threads()}")
    for dist in CORE[1:] + EXTRAS:
        print(f"{dist:<11} {_version(dist)}")
    return 0
