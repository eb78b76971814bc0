"""The resume check: a checkpoint resumes only under a config that builds the same tensors."""

from __future__ import annotations

from pathlib import Path

import pytest

from factorflow.config import load_config, to_dict
from factorflow.engine.trainer import check_resumable


def test_resume_refuses_other_tensors_but_allows_memory_settings() -> None:
    saved = to_dict(load_config("tiny", ["model=af"]))
    where = Path("run/checkpoints/step_00000010")
    check_resumable(saved, load_config("tiny", ["model=af", "train.lr=1e-5"]), where)
    check_resumable(saved, load_config("tiny", ["model=af", "flow.recompute=all"]), where)
    check_resumable(saved, load_config("tiny", ["model=af", "mi.cond_channels=3"]), where)
    with pytest.raises(ValueError, match=r"step_00000010.*flow.steps: 2 -> 3"):
        check_resumable(saved, load_config("tiny", ["model=af", "flow.steps=3"]), where)
    with pytest.raises(ValueError, match=r"af.encoder: 'conv' -> 'linear'"):
        check_resumable(saved, load_config("tiny", ["model=af", "af.encoder=linear"]), where)
