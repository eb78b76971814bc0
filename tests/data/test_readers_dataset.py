"""ClipDataset / FrameDataset: labels, fixed length, LRU cache, unreadable files, frame size."""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from factorflow.data.dataset import ClipDataset, FrameDataset, fit_length
from factorflow.data.readers import open_reader


def write_clip(root, word, clip, n, size=8, speaker=None, meta=None):
    folder = root / "train" / word
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        image = np.full((size, size, 3), 10 * clip + t, np.uint8)
        Image.fromarray(image).save(folder / f"{word}_{clip:05d}_{t:02d}.png")
    if meta is not None:
        meta["clips"].append({"split": "train", "word": word, "clip": clip, "speaker": speaker})


@pytest.fixture
def root(tmp_path):
    meta = {"clips": []}
    write_clip(tmp_path, "BELOW", 0, 6, speaker="sp_b", meta=meta)
    write_clip(tmp_path, "ABOUT", 1, 11, speaker="sp_a", meta=meta)
    write_clip(tmp_path, "ABOUT", 2, 3, meta=meta)
    write_clip(tmp_path, "CHAIR", 3, 4, speaker="sp_a", meta=meta)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    return tmp_path


def test_items_labels_and_fixed_length(root):
    dataset = ClipDataset(open_reader(root), frames=5)
    assert dataset.size == (8, 8) and len(dataset) == 4
    item = dataset[0]  # ABOUT_00001: 11 frames centre-cropped to 5 -> frames 3..7
    assert item["frames"].shape == (5, 3, 8, 8) and item["frames"].dtype == torch.uint8
    assert item["frames"][:, 0, 0, 0].tolist() == [13, 14, 15, 16, 17]
    assert (item["word"].item(), item["speaker"].item(), item["index"].item()) == (0, 0, 0)
    short = dataset[1]  # ABOUT_00002: 3 frames, padded by repeating the last
    assert short["frames"][:, 0, 0, 0].tolist() == [20, 21, 22, 22, 22]
    assert short["speaker"].item() == -1
    assert [dataset[i]["word"].item() for i in range(4)] == [0, 0, 1, 2]
    assert dataset.speakers == ["sp_a", "sp_b"] and dataset[2]["speaker"].item() == 1
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch["frames"].shape == (4, 5, 3, 8, 8) and batch["word"].dtype == torch.long


def test_vocabulary_override(root):
    dataset = ClipDataset(open_reader(root), frames=2, words=["CHAIR", "ZEBRA"])
    assert [dataset.labels(i)[0] for i in range(4)] == [-1, -1, -1, 0]


def test_fit_length():
    frames = np.arange(7)
    assert fit_length(frames, 3).tolist() == [2, 3, 4]
    assert fit_length(frames, 9).tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 6]


def test_lru_cache_is_bounded(root):
    reader = open_reader(root)
    decoded = []
    load = reader.load_frames

    def counting(ref):
        decoded.append(ref.clip_id)
        return load(ref)

    reader.load_frames = counting
    dataset = ClipDataset(reader, frames=2, cache_items=2)
    for index in (0, 1, 0, 2, 0, 1):
        dataset[index]
    assert len(dataset._cache) <= 2
    # 0 and 1 decoded; 0 a hit; 2 evicts 1 (least recently used); 0 a hit; 1 decoded again.
    assert len(decoded) == 4
    uncached = ClipDataset(reader, frames=2, cache_items=0)
    decoded.clear()
    uncached[0], uncached[0]
    assert len(decoded) == 2 and len(uncached._cache) == 0


def test_unreadable_files_are_skipped_and_counted(root):
    bad = root / "train" / "ABOUT" / "ABOUT_00002_01.png"
    bad.write_bytes(b"\x89PNG garbage")
    empty = root / "train" / "CHAIR" / "CHAIR_00003_00.png"
    empty.write_bytes(b"")
    dataset = ClipDataset(open_reader(root), frames=2, size=8)
    with pytest.warns(RuntimeWarning, match="ABOUT_00002"):
        item = dataset[1]
    assert item["index"].item() == 2  # replaced by the next readable clip, BELOW_00000
    with pytest.warns(RuntimeWarning, match="CHAIR_00003_00.png"):
        item = dataset[3]
    assert item["index"].item() == 0  # wraps around
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataset[1]["index"].item() == 2  # known bad: no second warning
    assert dataset.skipped == [str(bad), str(empty)]
    assert "skipped 2 unreadable" in dataset.summary() and str(empty) in dataset.summary()


def test_every_file_bad_is_a_clear_error(root):
    for path in (root / "train").rglob("*.png"):
        path.write_bytes(b"")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="every clip.*unreadable"):
        ClipDataset(open_reader(root), frames=2)


def test_wrong_frame_size(root):
    write_clip(root, "DOUBT", 4, 3, size=12)
    reader = open_reader(root)
    dataset = ClipDataset(reader, frames=3, size=8)
    with pytest.raises(ValueError, match=r"DOUBT_00004_00\.png has 12x12 frames, expected 8x8"):
        dataset[4]
    resized = ClipDataset(reader, frames=3, size=(8, 8), resize=True)
    assert resized[4]["frames"].shape == (3, 3, 8, 8)
    assert resized[4]["frames"][:, 0, 4, 4].tolist() == [40, 41, 42]


def test_frame_dataset(root):
    frames = FrameDataset(ClipDataset(open_reader(root), frames=3, cache_items=1))
    assert len(frames) == 12
    item = frames[4]  # clip 1 (ABOUT_00002), step 1
    assert item["image"].shape == (3, 8, 8) and item["image"][0, 0, 0].item() == 21
    assert (item["index"].item(), item["frame"].item(), item["word"].item()) == (1, 1, 0)
    with pytest.raises(IndexError):
        frames[12]
    assert len(list(frames)) == 12
