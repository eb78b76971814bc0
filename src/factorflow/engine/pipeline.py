"""Runs made of stages: a model whose registry entry has a `stage1` (af, hybrid) trains that flow
model first, in RUN_DIR/stage1, then itself from the stage-1 checkpoint.

Both stages resume independently with --resume; a stage-1 checkpoint given in the config (the
entry's `stage1.checkpoint` key, e.g. `af.glow_checkpoint`) skips stage 1.
"""

from __future__ import annotations

import logging
from pathlib import Path

from factorflow.config import Config, get_key, replace, with_keys
from factorflow.engine.trainer import TrainResult, check_batch_size, check_run_dir, train
from factorflow.models import spec

__all__ = ["run_training", "with_vocabulary"]

log = logging.getLogger(__name__)


def with_vocabulary(config: Config, data_dir: Path) -> Config:
    """Fill the model's vocabulary key (e.g. `af.num_words`) from the training split's words, and
    its speakers key (e.g. `mc.num_speakers`) from its speakers."""
    entry = spec(config.model)
    key = entry.vocabulary_key
    want_words = bool(key) and not get_key(config, key)
    want_speakers = bool(entry.speakers_key) and not get_key(config, entry.speakers_key)
    if not (want_words or want_speakers):
        return config
    from factorflow.engine.loader import speakers_of, words_of

    if want_speakers:
        speakers = speakers_of(data_dir, config.data.layout)
        config = with_keys(config, {entry.speakers_key: len(speakers)})
    if not want_words:
        return config
    words = words_of(data_dir, config.data.layout)
    if not words:
        log.warning("%s has no word labels: the sequential classification loss is off", data_dir)
    return with_keys(config, {key: len(words)})


def run_training(
    config: Config, data_dir: Path, run_dir: Path, resume: bool = False, progress: bool = True
) -> TrainResult:
    run_dir = Path(run_dir)
    config = with_vocabulary(config, data_dir)
    stage = spec(config.model).stage1
    two_stage = stage is not None and not get_key(config, stage.checkpoint)
    # Before stage 1 touches anything: stage 2's refusal must not leave stage 1 rewritten.
    check_run_dir(run_dir, config, resume, pending=(stage.checkpoint,) if two_stage else ())
    check_batch_size(config)
    if two_stage:
        stage1_dir = run_dir / "stage1"
        stage1 = with_keys(
            replace(config, model=stage.model),
            {
                "train.max_steps": get_key(config, stage.steps),
                "data.batch_size": get_key(config, stage.batch_size),
            },
        )
        done = stage1_dir.is_dir() and resume
        first = train(stage1, data_dir, stage1_dir, resume=done, progress=progress)
        config = with_keys(config, {stage.checkpoint: str(first.checkpoint)})
    return train(config, data_dir, run_dir, resume=resume, progress=progress)
