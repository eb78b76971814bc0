"""Image grids and PNG files (uint8 tensors [N,3,H,W] or arrays [N,H,W,3])."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from factorflow.io import atomic_file

__all__ = ["grid", "save_grid", "save_png", "to_hwc"]


def to_hwc(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 [N,3,H,W] tensor or [N,H,W,3] array -> uint8 array [N,H,W,3]."""
    if torch.is_tensor(images):
        images = images.detach().cpu()
        if images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 images, got {images.dtype}")
        return images.permute(0, 2, 3, 1).numpy()
    return np.asarray(images)


def grid(images: torch.Tensor | np.ndarray, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile N images into one uint8 [H,W,3] array, `nrow` images per row."""
    arr = to_hwc(images)
    n, h, w, c = arr.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y : y + h, x : x + w] = arr[i]
    return out


def save_png(image: np.ndarray, path: Path, replace: bool = True) -> None:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    with atomic_file(path, replace=replace) as tmp:
        tmp.write_bytes(buf.getvalue())


def save_grid(images: torch.Tensor | np.ndarray, path: Path, nrow: int | None = None) -> np.ndarray:
    out = grid(images, nrow)
    save_png(out, path)
    return out
