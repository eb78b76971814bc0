"""Controlled generation (`factorflow sample --mode traverse|word|draw`): the mouth factor moved
along its main directions, a word's typical motion played on a face, and mouths drawn from a
conditional prior. Statistics come from a corpus's training clips (`control.stats`)."""

from __future__ import annotations

from factorflow.control.generate import draws, sweep_frames, traverse, word_clip
from factorflow.control.stats import ControlStats, compute_stats, load_stats, save_stats

__all__ = [
    "ControlStats",
    "compute_stats",
    "draws",
    "load_stats",
    "save_stats",
    "sweep_frames",
    "traverse",
    "word_clip",
]
