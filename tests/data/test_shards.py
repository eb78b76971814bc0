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


@pytest.fixture(scope="module")
def lrw_with_landmarks(tiny_lrw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_lrw with face-tool landmarks beside every clip but the first of each split."""
    import shutil

    from factorflow.data.readers.base import LANDMARKS_KEY, landmarks_file

    root = tmp_path_factory.mktemp("marked") / "lrw"
    shutil.copytree(tiny_lrw, root)
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for ref in open_reader(root, split=split).refs[1:]:
            points = rng.uniform(0, 16, (len(ref.files), 478, 2)).astype(np.float32)
            np.savez(landmarks_file(ref), **{LANDMARKS_KEY: points})
    return root


def test_shards_carry_landmarks_like_the_folders(lrw_with_landmarks: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    convert(lrw_with_landmarks, out, clips_per_shard=5, shuffle_seed=None)
    with tarfile.open(out / "train-000000.tar") as tar:
        names = tar.getnames()
    assert json.loads((out / INDEX).read_text())["landmarks"] == 14  # all but one per split
    assert names[3].endswith(".landmarks.npy") and names[3].count(".") == 2  # key.landmarks.npy
    assert np.load(tar_member(out / "train-000000.tar", names[3])).dtype == np.float32
    for options in ({"frames": 8}, {"frames": 12, "size": 32, "resize": True}):
        folders = ClipDataset(open_reader(lrw_with_landmarks), **options)
        shards = ShardClipDataset(out, **options)
        for i in range(1, len(folders)):
            np.testing.assert_array_equal(shards.clip_landmarks(i), folders.clip_landmarks(i))
        assert shards.clip_landmarks(1).shape == (options["frames"], 478, 2)
        with pytest.raises(ValueError, match=r"clip \S+ of .* has no landmarks: shard a corpus"):
            shards.clip_landmarks(0)
        with pytest.raises(ValueError, match="has no landmarks file"):
            folders.clip_landmarks(0)


def tar_member(path: Path, name: str):
    import io

    with tarfile.open(path) as tar:
        return io.BytesIO(tar.extractfile(name).read())


@pytest.fixture()
def served(tiny_shards: Path):
    """tiny_shards on an HTTP server on 127.0.0.1 (a corpus in object storage): its URL."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tiny_shards))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_shards_stream_from_a_url_as_from_the_folder(
    tiny_shards: Path, served: str, tmp_path: Path
) -> None:
    pytest.importorskip("webdataset")
    from factorflow.engine.distributed import DistInfo
    from factorflow.engine.loader import StepLoader

    assert is_sharded(served) and not is_sharded(served + "missing")
    local = ShardClipDataset(tiny_shards, "val", frames=8)
    remote = ShardClipDataset(served, "val", frames=8, cache_dir=tmp_path / "cache")
    assert len(remote) == len(local) and remote.words == local.words
    for i in range(len(local)):
        assert torch.equal(remote[i]["frames"], local[i]["frames"])
        assert remote.read_clip(i)[1] == local.read_clip(i)[1]

    def dist(rank: int = 0, world: int = 1) -> DistInfo:
        return DistInfo(rank, world, 0, torch.device("cpu"))

    def frames(batch: dict) -> list[int]:
        return (batch["index"] * 8 + batch["frame"]).tolist()

    def remote_frames() -> FrameDataset:
        return FrameDataset(ShardClipDataset(served, frames=8, cache_dir=tmp_path / "cache"))

    folder = StepLoader(
        FrameDataset(ShardClipDataset(tiny_shards, frames=8)), 8, seed=1, dist=dist()
    )
    url = StepLoader(remote_frames(), 8, seed=1, dist=dist())
    steps = 15  # crosses an epoch (12 steps of 8 frames)
    one = [next(it) for it in [folder.iterate(0)] for _ in range(steps)]
    streamed = url.iterate(0)
    for batch in one:  # the same order as the folder, pixels included
        got = next(streamed)
        assert frames(got) == frames(batch) and torch.equal(got["image"], batch["image"])
    # exact resume: a loader restarted at step 9 draws the uninterrupted run's batches
    resumed = StepLoader(remote_frames(), 8, seed=1, dist=dist()).iterate(9)
    assert [frames(next(resumed)) for _ in range(steps - 9)] == [frames(b) for b in one[9:]]
    # DDP: two ranks of 4 draw, between them, the single process's batch of 8
    ranks = [StepLoader(remote_frames(), 4, seed=1, dist=dist(r, 2)).iterate(0) for r in range(2)]
    for batch in one:
        parts = [frames(next(r)) for r in ranks]
        assert not set(parts[0]) & set(parts[1])
        assert sorted(parts[0] + parts[1]) == sorted(frames(batch))
    with pytest.raises(ValueError, match="has no 'test' split"):
        ShardClipDataset(served, "test")


def test_train_reads_a_shard_corpus_from_its_url(served: str, tmp_path: Path, capsys) -> None:
    pytest.importorskip("webdataset")
    from factorflow.cli.main import main

    run = tmp_path / "run"
    args = ["train", "--data", served, "--out", str(run), "--config", "tiny", "--max-steps", "3"]
    assert main([*args, "--no-progress", "train.val_every=100"]) == 0
    assert "trained glow to step 3" in capsys.readouterr().out
