"""Inputs of controlled generation: a face (one frame of an image, a clip or a video), condition
frames, and the mouth-factor statistics (loaded from `--stats`, or computed from `--data`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import Tensor

from factorflow.control.stats import ControlStats, load_stats, save_stats, stats_from_data
from factorflow.models.base import FlowModel

__all__ = ["load_face", "load_frames", "resolve_stats"]

log = logging.getLogger(__name__)


def load_frames(path: Path, size: int, option: str) -> Tensor:
    """All frames uint8 [N,3,H,W] of an image, a folder of frames, an LRW clip prefix or a video,
    at the model's size (pre-cropped faces; another size is an error naming the file)."""
    from factorflow.reenact.media import load_clip, to_model_frames

    path = Path(path)
    try:
        frames, _ = load_clip(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{option} {path} does not exist") from None
    if frames.shape[1:3] != (size, size):
        raise ValueError(
            f"{option} {path}: frames are {frames.shape[2]}x{frames.shape[1]}, the model takes "
            f"{size}x{size} face crops (align and crop it first, e.g. `factorflow prepare`)"
        )
    return to_model_frames(frames, size, f"{option} {path}")


def load_face(path: Path, frame: int, size: int, option: str = "--target") -> Tensor:
    """Frame `frame` uint8 [3,H,W] of `load_frames(path)`."""
    frames = load_frames(path, size, option)
    if not -len(frames) <= frame < len(frames):
        raise ValueError(f"{option} {path} has {len(frames)} frames; --frame {frame} is outside")
    return frames[frame]


def resolve_stats(
    model: FlowModel,
    config: Any,
    data: Path | None,
    stats_dir: Path | None,
    max_clips: int | None = None,
    force: bool = False,
    flow_map: bool = False,
) -> ControlStats:
    """The mouth-factor statistics: loaded from `stats_dir` when it holds them (and --force is not
    asking to remake them), else computed from the training split of `data` (with a flow map if
    `flow_map`) and, when `stats_dir` is given, stored there for the next time."""
    stored = stats_dir is not None and (Path(stats_dir) / "stats.json").exists()
    if stored and (data is None or not force):
        log.info("control stats from %s", stats_dir)
        stats = load_stats(stats_dir)
        if flow_map and stats.flow_map is None and data is not None:
            raise ValueError(
                f"--stats {stats_dir} holds no flow map: pass --force to remake them from --data"
            )
        return stats
    if data is None:
        raise ValueError(
            "this mode needs --data DATA (a prepared corpus: its training clips give the factor's "
            "directions and the words' motion) or --stats DIR holding stats made before"
        )
    stats = stats_from_data(model, config.data, data, max_clips, flow_map=flow_map)
    if stats_dir is not None:
        save_stats(stats, stats_dir, replace=force)
        log.info("control stats stored in %s", stats_dir)
    return stats
