"""Run logs: a JSONL metrics file, TensorBoard event files (tb extra), PNG grids. Rank 0 only."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from factorflow.images import save_grid

__all__ = ["RunLogger", "read_metrics"]

log = logging.getLogger(__name__)


class RunLogger:
    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard not installed (pip install factorflow[tb]): JSONL log only")
            else:
                self.writer = SummaryWriter(str(self.run_dir / "tb"))

    def scalars(self, step: int, values: dict[str, float], split: str = "train") -> None:
        if not self.enabled:
            return
        record = {"step": step, "split": split, "time": round(time.time(), 3), **values}
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{split}/{key}", value, step)

    def images(self, step: int, grids: dict[str, torch.Tensor]) -> None:
        if not self.enabled:
            return
        for name, images in grids.items():
            path = self.run_dir / "samples" / f"{name}_{step:08d}.png"
            # [rows, cols, 3, H, W] keeps its rows; [N, 3, H, W] is tiled square.
            nrow = images.shape[1] if images.dim() == 5 else None
            grid = save_grid(images.flatten(0, 1) if nrow else images, path, nrow=nrow)
            if self.writer is not None:
                self.writer.add_image(name, grid, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
