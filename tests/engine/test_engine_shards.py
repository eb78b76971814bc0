"""Training streams shards: resumes mid-epoch at the same batches, whatever the workers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from factorflow.config import load_config
from factorflow.data.shards import ShardClipDataset, convert
from factorflow.engine.distributed import DistInfo
from factorflow.engine.loader import StepLoader, open_split
from factorflow.engine.trainer import train

OVERRIDES = ["train.ckpt_every=100", "train.val_every=100", "train.sample_every=100"]


@pytest.fixture(scope="module")
def shards(tiny_lrw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "data"
    convert(tiny_lrw, out, clips_per_shard=4)
    return out


def _dist(rank: int = 0, world: int = 1) -> DistInfo:
    return DistInfo(rank, world, 0, torch.device("cpu"))


def test_loader_picks_shards_and_workers_draw_the_same_batches(shards: Path) -> None:
    cfg = load_config("tiny").data
    frames = open_split(shards, "train", cfg, "frames")
    assert isinstance(frames.clips, ShardClipDataset)
    steps = 20  # crosses an epoch (12 steps of 8 frames)
    plain = StepLoader(frames, 8, seed=1, dist=_dist()).iterate(3)
    workers = StepLoader(frames, 8, seed=1, dist=_dist(), num_workers=2).iterate(3)
    for _ in range(steps):
        a, b = next(plain), next(workers)
        assert torch.equal(a["index"] * 8 + a["frame"], b["index"] * 8 + b["frame"])
    # two ranks of 4 draw, between them, the single process's batch of 8
    one = StepLoader(frames, 8, seed=1, dist=_dist()).iterate(5)
    ranks = [StepLoader(frames, 4, seed=1, dist=_dist(r, 2)).iterate(5) for r in range(2)]
    for _ in range(steps):
        whole = next(one)
        parts = [next(r) for r in ranks]
        got = sorted(x for p in parts for x in (p["index"] * 8 + p["frame"]).tolist())
        assert got == sorted((whole["index"] * 8 + whole["frame"]).tolist())


def test_resume_mid_epoch_on_shards_matches_uninterrupted(shards: Path, tmp_path: Path) -> None:
    cfg9 = load_config("tiny", [*OVERRIDES, "train.max_steps=9"])
    ref = train(cfg9, shards, tmp_path / "a", progress=False)
    run = tmp_path / "b"
    train(load_config("tiny", [*OVERRIDES, "train.max_steps=5"]), shards, run, progress=False)
    done = train(cfg9, shards, run, resume=True, progress=False)
    assert ref.step == done.step == 9
    wa = load_file(str(ref.checkpoint / "model.safetensors"))
    wb = load_file(str(done.checkpoint / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
