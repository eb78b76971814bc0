"""Runs made of stages: `train --model af` trains the flow first (stage 1), then the factorization.

Stage 1 lives in RUN_DIR/stage1 (a plain Glow run, or an MI-flow run for the hybrid), and stage 2
starts from its last checkpoint. Both stages resume independently with --resume.
"""

from __future__ import annotations

import logging
from pathlib import Path

from factorflow.config import Config, replace
from factorflow.engine.trainer import TrainResult, train

log = logging.getLogger(__name__)

# stage-2 model -> the flow model its stage 1 trains
STAGE1 = {"af": "glow", "hybrid": "mi"}


def with_vocabulary(config: Config, data_dir: Path) -> Config:
    """Fill `af.num_words` from the training split's sorted vocabulary (0 when it has no words)."""
    if config.model not in STAGE1 or config.af.num_words:
        return config
    from factorflow.data.readers import open_reader

    words = open_reader(data_dir, layout=config.data.layout, split="train").words
    if not words:
        log.warning("%s has no word labels: the sequential classification loss is off", data_dir)
    return replace(config, af={"num_words": len(words)})


def run_training(
    config: Config, data_dir: Path, run_dir: Path, resume: bool = False, progress: bool = True
) -> TrainResult:
    run_dir = Path(run_dir)
    config = with_vocabulary(config, data_dir)
    if config.model in STAGE1 and not config.af.glow_checkpoint:
        stage1_dir = run_dir / "stage1"
        stage1 = replace(
            config,
            model=STAGE1[config.model],
            train={"max_steps": config.af.stage1_steps},
            data={"batch_size": config.af.stage1_batch_size},
        )
        done = stage1_dir.is_dir() and resume
        first = train(stage1, data_dir, stage1_dir, resume=done, progress=progress)
        config = replace(config, af={"glow_checkpoint": str(first.checkpoint)})
    return train(config, data_dir, run_dir, resume=resume, progress=progress)
