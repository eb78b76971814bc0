"""Shared fixtures: tiny LRW-layout datasets generated on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def write_lrw(root: Path, size: int = 16, frames: int = 8, clips: dict | None = None) -> Path:
    """Random-but-structured clips in LRW frame layout: a per-clip colour and a moving bar."""
    rng = np.random.default_rng(0)
    clips = clips or {"train": 6, "val": 2}
    for split, n in clips.items():
        for w, word in enumerate(["ABOUT", "BELOW"]):
            folder = root / split / word
            folder.mkdir(parents=True, exist_ok=True)
            for c in range(n):
                base = rng.integers(40, 215, (1, 1, 3))
                for f in range(frames):
                    img = np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255)
                    row = size // 2 + (f % 4 if w else 3 - f % 4)
                    img[row : row + 2, size // 4 : 3 * size // 4] = 20
                    Image.fromarray(img.astype(np.uint8)).save(
                        folder / f"{word}_{c:05d}_{f:02d}.png"
                    )
    return root


@pytest.fixture(scope="session")
def tiny_lrw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lrw(tmp_path_factory.mktemp("lrw"))


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
