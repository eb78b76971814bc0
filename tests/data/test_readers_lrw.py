"""LRW readers on tiny generated corpora: frame folders (PNG + JPG, meta.json) and mp4s."""

import json

import numpy as np
import pytest
from PIL import Image

from factorflow.data.readers import (
    LRWFramesReader,
    LRWVideoReader,
    detect_layout,
    open_reader,
)


def frame_value(clip: int, frame: int) -> int:
    return 10 * clip + 2 * frame


def write_frames(split_dir, word, clip, n, size=8, ext="png", pad=True):
    folder = split_dir / word
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(1, n + 1):
        name = f"{word}_{clip:05d}_{t:02d}.{ext}" if pad else f"{word}_{clip}_{t}.{ext}"
        image = np.full((size, size, 3), frame_value(clip, t), np.uint8)
        Image.fromarray(image).save(folder / name, quality=100)


@pytest.fixture
def lrw_root(tmp_path):
    root = tmp_path / "lrw"
    write_frames(root / "train", "BELOW", 0, 4)
    write_frames(root / "train", "BELOW", 3, 4)
    write_frames(root / "train", "ABOUT", 1, 11, pad=False)  # numeric, not lexical, order
    write_frames(root / "train", "CHAIR", 2, 3, ext="jpg")
    write_frames(root / "val", "DOUBT", 0, 2)
    (root / "train" / "BELOW" / "BELOW_00000_mask.npz").write_bytes(b"not a frame")
    meta = {
        "clips": [
            {"split": "train", "word": "BELOW", "clip": 0, "speaker": "s07"},
            {"split": "train", "word": "BELOW", "clip": 3, "speaker": "s02"},
            {"split": "train", "word": "ABOUT", "clip": 1, "speaker": "s07"},
            {"split": "val", "word": "DOUBT", "clip": 0, "speaker": "s09"},
        ]
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_lrw_frames_index_labels_and_order(lrw_root):
    reader = open_reader(lrw_root)
    assert isinstance(reader, LRWFramesReader)
    assert [r.clip_id for r in reader.refs] == [
        "ABOUT_00001",
        "BELOW_00000",
        "BELOW_00003",
        "CHAIR_00002",
    ]
    # Vocabulary spans all splits so indices agree between train and val.
    assert reader.words == ["ABOUT", "BELOW", "CHAIR", "DOUBT"]
    assert reader.speakers == ["s02", "s07", "s09"]
    clip = reader[0]
    assert clip.frames.shape == (11, 8, 8, 3) and clip.frames.dtype == np.uint8
    assert clip.frames[:, 0, 0, 0].tolist() == [frame_value(1, t) for t in range(1, 12)]
    assert (clip.word, clip.speaker) == ("ABOUT", "s07")
    assert reader[2].speaker == "s02"
    jpg = reader[3]
    assert jpg.speaker is None and jpg.word == "CHAIR"
    assert np.abs(jpg.frames[:, 4, 4, 0].astype(int) - [24, 26, 28]).max() <= 2


def test_lrw_frames_is_lazy(lrw_root, monkeypatch):
    import factorflow.data.readers.base as base

    calls = []
    monkeypatch.setattr(base, "load_image", lambda p: calls.append(p))
    reader = LRWFramesReader(lrw_root, split="train")
    assert len(reader) == 4 and calls == []


def test_lrw_root_may_be_a_split_folder(lrw_root):
    reader = open_reader(lrw_root / "val")
    assert reader.layout == "lrw" and reader.split == "val"
    assert [(c.word, c.speaker) for c in reader] == [("DOUBT", "s09")]
    assert reader.words == ["DOUBT"]


def test_lrw_without_meta_has_no_speakers(lrw_root):
    (lrw_root / "meta.json").unlink()
    reader = open_reader(lrw_root, layout="lrw")
    assert reader.speakers == [] and all(c.speaker is None for c in reader)


def test_lrw_missing_split_is_a_clear_error(lrw_root):
    with pytest.raises(ValueError, match="test"):
        open_reader(lrw_root, layout="lrw", split="test")


def test_lrw_mp4_layout(tmp_path):
    pytest.importorskip("av")
    from factorflow.data.video_io import write_video

    root = tmp_path / "lrw_mp4"
    for word, clips in {"ABOUT": [1, 2], "WORLD": [7]}.items():
        for split in ("train", "test"):
            folder = root / word / split
            folder.mkdir(parents=True)
            for clip in clips:
                frames = np.full((5, 16, 16, 3), 30 * clip, np.uint8)
                write_video(folder / f"{word}_{clip:05d}.mp4", frames, fps=25)
                (folder / f"{word}_{clip:05d}.txt").write_text("Duration: 0.2 seconds")
    assert detect_layout(root) == "lrw-mp4"
    reader = open_reader(root, split="test")
    assert isinstance(reader, LRWVideoReader)
    assert [r.clip_id for r in reader.refs] == ["ABOUT_00001", "ABOUT_00002", "WORLD_00007"]
    assert reader.words == ["ABOUT", "WORLD"] and reader.speakers == []
    clip = reader[2]
    assert clip.frames.shape == (5, 16, 16, 3) and clip.word == "WORLD"
    assert abs(int(clip.frames[2, 8, 8, 1]) - 30 * 7) <= 3
