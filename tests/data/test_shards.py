"""Tar shards: the same clips as the frame folders, a sampler that splits them across ranks
without overlap, in an order fixed by (seed, epoch)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from factorflow.data.dataset import ClipDataset, FrameDataset
from factorflow.data.readers import open_reader
from factorflow.data.shards import (
    INDEX,
    ShardClipDataset,
    ShardSampler,
    convert,
    is_sharded,
    write_shards,
)


@pytest.fixture(scope="module")
def tiny_shards(tiny_lrw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "data"
    convert(tiny_lrw, out, clips_per_shard=5, shuffle_seed=None)
    return out


def test_shards_hold_the_frame_folders_clips(tiny_lrw: Path, tiny_shards: Path) -> None:
    assert is_sharded(tiny_shards) and not is_sharded(tiny_lrw)
    index = json.loads((tiny_shards / INDEX).read_text())
    assert [s["clips"] for s in index["splits"]["train"]] == [5, 5, 2]
    for split in ("train", "val"):
        folders = ClipDataset(open_reader(tiny_lrw, split=split), frames=8)
        shards = ShardClipDataset(tiny_shards, split, frames=8)
        assert len(shards) == len(folders) and shards.words == folders.words
        for i in range(len(folders)):
            a, b = folders[i], shards[i]
            assert torch.equal(a["frames"], b["frames"])
            assert a["word"] == b["word"] and a["speaker"] == b["speaker"]
    frames = FrameDataset(ShardClipDataset(tiny_shards, frames=8))
    assert len(frames) == 12 * 8 and frames[9]["image"].shape == (3, 16, 16)


def test_shards_are_webdataset_samples(tiny_shards: Path) -> None:
    with tarfile.open(tiny_shards / "train-000000.tar") as tar:
        names = tar.getnames()
        label = json.loads(tar.extractfile(names[1]).read())
    assert names[0].endswith(".npy") and names[1] == names[0][:-4] + ".json"
    assert names[0].count(".") == 1  # WebDataset's key is the name before the first dot
    assert label["word"] == "ABOUT" and label["split"] == "train"


def test_sampler_splits_ranks_without_overlap_deterministically() -> None:
    counts = [5, 3, 7, 4, 6]
    n = sum(counts)
    one = ShardSampler(counts, seed=3, window=2)
    order = list(one)
    assert sorted(order) == list(range(n))  # every item once per epoch
    assert list(ShardSampler(counts, seed=3, window=2)) == order  # a pure function of the seed
    one.set_epoch(1)
    assert list(one) != order
    ranks = [list(ShardSampler(counts, seed=3, world=3, rank=r, window=2)) for r in range(3)]
    assert all(len(r) == n // 3 for r in ranks)
    assert not set(ranks[0]) & set(ranks[1]) and not set(ranks[1]) & set(ranks[2])
    # position p of the single-process order goes to rank p % world
    for p, item in enumerate(order[: 3 * (n // 3)]):
        assert ranks[p % 3][p // 3] == item
    # a window of 2 shards: the first items of an epoch come from two shards only
    starts = np.cumsum([0, *counts])
    first = {int(np.searchsorted(starts, i, side="right")) - 1 for i in order[:8]}
    assert len(first) <= 2


def test_writer_refuses_mixed_sizes_and_existing_output(tiny_lrw: Path, tmp_path: Path) -> None:
    clips = [
        (np.zeros((4, 8, 8, 3), np.uint8), {"split": "train", "clip_id": "A_0", "word": "A"}),
        (np.zeros((4, 9, 8, 3), np.uint8), {"split": "train", "clip_id": "A_1", "word": "A"}),
    ]
    with pytest.raises(ValueError, match="A_1 is 8x9"):
        write_shards(clips, tmp_path / "mixed")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        convert(tiny_lrw, tmp_path / "taken")
    assert (tmp_path / "taken" / "x").read_text() == "mine"


def test_truncated_shard_is_an_error_naming_it(tiny_shards: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_shards, broken)
    shard = broken / "train-000001.tar"
    shard.write_bytes(shard.read_bytes()[:3000])
    data = ShardClipDataset(broken, frames=8)
    with pytest.raises(ValueError, match="train-000001.tar"):
        data[6]


def test_shard_command(tiny_lrw: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from factorflow.cli.main import main

    out = tmp_path / "sharded"
    assert main(["shard", "--data", str(tiny_lrw), "--out", str(out)]) == 0
    assert "train 12 clips, val 4 clips" in capsys.readouterr().out
    assert main(["shard", "--data", str(tiny_lrw), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["shard", "--data", str(tiny_lrw), "--out", str(out), "--force"]) == 0
    shuffled = ShardClipDataset(out, frames=8)
    ids = [shuffled.read_clip(i)[1]["clip_id"] for i in range(len(shuffled))]
    in_order = [r.clip_id for r in open_reader(tiny_lrw).refs]
    assert sorted(ids) == sorted(in_order) and ids != in_order  # shuffled before sharding
