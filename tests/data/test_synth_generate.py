"""Writing a synthetic dataset: layout, meta.json, determinism, splits, exact re-rendering."""

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factorflow.cli import synth as synth_cli
from factorflow.data.readers import open_reader
from factorflow.data.synth import FORMAT, MOUTH_FACTORS, VOCABULARY, SynthMeta, generate, plan
from factorflow.data.synth.meta import MASK_LAYOUT

TINY = dict(size=32, frames=5, speakers=5, words=3, clips_per_pair=2, seed=3, val_fraction=0.2)


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ds"
    generate(root, **TINY)
    return root


def test_layout_matches_the_interface(dataset):
    words = sorted(VOCABULARY[:3])
    assert sorted(p.name for p in dataset.iterdir()) == [
        "masks",
        "meta.json",
        "test",
        "train",
        "val",
    ]
    pattern = re.compile(r"^([A-Z]+)_(\d{5})_(\d{2})\.png$")
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (dataset / split).iterdir()) == words
        for word in words:
            names = sorted(p.name for p in (dataset / split / word).iterdir())
            parsed = [pattern.match(n) for n in names]
            assert all(parsed), names
            assert {m.group(1) for m in parsed} == {word}
            clips = sorted({int(m.group(2)) for m in parsed})
            assert clips == list(range(len(clips))), "clip numbers count from 0 per split and word"
            for c in clips:
                frames = sorted(int(m.group(3)) for m in parsed if int(m.group(2)) == c)
                assert frames == list(range(5))
    assert not list(dataset.parent.glob(".ds.*")), "no temporary folder left behind"


def test_meta_json_is_as_documented(dataset):
    meta = json.loads((dataset / "meta.json").read_text())
    assert list(meta) == [
        "format",
        "size",
        "frames",
        "fps",
        "seed",
        "settings",
        "words",
        "mouth_factors",
        "mask_layout",
        "speakers",
        "clips",
    ]
    assert meta["format"] == FORMAT == "factorflow-synth/1"
    assert (meta["size"], meta["frames"], meta["fps"], meta["seed"]) == (32, 5, 25, 3)
    assert meta["words"] == sorted(VOCABULARY[:3])
    assert meta["mouth_factors"] == list(MOUTH_FACTORS)
    assert meta["mask_layout"] == MASK_LAYOUT
    assert meta["settings"]["test_speakers"] == 2  # default: 20% of speakers, at least 2
    assert len(meta["speakers"]) == 5
    for s in meta["speakers"].values():
        assert set(s) == {"split", "identity", "style"}
        assert s["split"] in ("train", "test")
    on_disk = {str(p.relative_to(dataset)) for p in dataset.rglob("*.png")}
    listed = set()
    assert len(meta["clips"]) == 5 * 3 * 2
    for c in meta["clips"]:
        assert set(c) == {
            "split",
            "word",
            "clip",
            "speaker",
            "pose",
            "lighting",
            "mouth",
            "files",
            "mask",
        }
        assert np.asarray(c["mouth"]).shape == (5, 5)
        assert c["files"] == [
            f"{c['split']}/{c['word']}/{c['word']}_{c['clip']:05d}_{t:02d}.png" for t in range(5)
        ]
        assert c["mask"] == f"masks/{c['split']}/{c['word']}/{c['word']}_{c['clip']:05d}.npz"
        listed.update(c["files"])
    assert listed == on_disk


def test_splits_are_disjoint_by_speaker(dataset):
    meta = SynthMeta.load(dataset)
    speakers = {s: {c.speaker for c in meta.clips(s)} for s in ("train", "val", "test")}
    assert speakers["test"].isdisjoint(speakers["train"] | speakers["val"])
    assert speakers["val"] <= {k for k, v in meta.speakers.items() if v.split == "train"}
    assert speakers["test"] == {k for k, v in meta.speakers.items() if v.split == "test"}
    assert len(speakers["test"]) == 2 and meta.clips("val")
    n = {s: len(meta.clips(s)) for s in ("train", "val", "test")}
    assert n == {"train": 3 * 5, "val": 3 * 1, "test": 3 * 4}


def test_rerender_equals_the_files_on_disk(dataset):
    meta = SynthMeta.load(dataset)
    for clip in meta.clips():
        frames = meta.frames(clip)
        disk = np.stack([np.asarray(Image.open(dataset / f)) for f in clip.files])
        np.testing.assert_array_equal(frames, disk)
        masks = np.load(dataset / clip.mask)["masks"]
        assert masks.dtype == np.uint8 and masks.shape == (5, 32, 32)
        np.testing.assert_array_equal(meta.masks(clip), masks)


def test_generation_is_deterministic_whatever_the_workers(dataset, tmp_path):
    generate(tmp_path / "again", workers=2, **TINY)
    assert digest(tmp_path / "again") == digest(dataset)
    generate(tmp_path / "other", **dict(TINY, seed=4))
    other = digest(tmp_path / "other")
    assert other.keys() == digest(dataset).keys() and other != digest(dataset)


def test_existing_speakers_do_not_change_with_more_speakers(dataset):
    small = SynthMeta.load(dataset)
    big = plan(**dict(TINY, speakers=8, test_speakers=2))
    assert big.speakers["S000"] == small.speakers["S000"]


def test_refuses_a_non_empty_output_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = dict(TINY, speakers=3, words=1, clips_per_pair=1, frames=2)
    with pytest.raises(ValueError, match="not empty"):
        generate(out, **args)
    assert (out / "keep.txt").read_text() == "mine"
    generate(out, overwrite=True, **args)
    assert not (out / "keep.txt").exists() and (out / "meta.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="words=99"):
        generate(tmp_path / "a", **dict(TINY, words=99))
    with pytest.raises(ValueError, match="at least one training speaker"):
        generate(tmp_path / "a", **dict(TINY, speakers=2))
    with pytest.raises(ValueError, match="multiple of 16"):
        generate(tmp_path / "a", **dict(TINY, size=30))
    assert not list(tmp_path.iterdir())


def test_reenactment_ground_truth(dataset):
    meta = SynthMeta.load(dataset)
    a, b = meta.clips("test")[0], meta.clips("train")[0]
    assert a.speaker != b.speaker
    own_frames, own_masks = meta.render_reenactment(a, a)
    np.testing.assert_array_equal(own_frames, meta.frames(a))
    np.testing.assert_array_equal(own_masks, meta.masks(a))
    # B says A's words: B's face (same as B's own frames outside the mouth), A's mouth motion.
    frames, masks = meta.render_reenactment(b, a)
    assert frames.shape == (len(a.mouth), 32, 32, 3)
    outside = (masks == 0) & (meta.masks(b) == 0)
    np.testing.assert_array_equal(frames[outside], meta.frames(b)[outside])
    assert np.abs(frames.astype(int) - meta.frames(a)).mean() > 10
    big, _ = meta.render_reenactment(b, a, size=64)
    assert big.shape == (len(a.mouth), 64, 64, 3)


def test_meta_lookup_and_errors(dataset, tmp_path):
    meta = SynthMeta.load(dataset)
    clip = meta.clips("val")[0]
    assert meta.clip("val", clip.word, clip.clip) is clip
    with pytest.raises(ValueError, match="no clip val/ABOUT/99"):
        meta.clip("val", "ABOUT", 99)
    with pytest.raises(ValueError, match="split 'dev'"):
        meta.clips("dev")
    with pytest.raises(FileNotFoundError, match="meta.json"):
        SynthMeta.load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "something/2"}))
    with pytest.raises(ValueError, match="factorflow-synth/1"):
        SynthMeta.load(tmp_path)


def test_readers_see_speakers_and_words(dataset):
    reader = open_reader(dataset, split="test")
    meta = SynthMeta.load(dataset)
    assert reader.words == meta.words
    clip = reader[0]
    expected = meta.clip("test", clip.word, int(clip.clip_id.split("_")[1]))
    assert clip.speaker == expected.speaker
    np.testing.assert_array_equal(clip.frames, meta.frames(expected))


def test_cli_writes_dataset_sheet_and_summary(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth_cli.add_parser(parser)
    sheet = tmp_path / "sheet.png"
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path / "cli"),
            "--size",
            "32",
            "--frames",
            "4",
            "--speakers",
            "4",
            "--words",
            "2",
            "--clips-per-pair",
            "1",
            "--workers",
            "1",
            "--sheet",
            str(sheet),
        ]
    )
    assert synth_cli.run(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert (
        len(out) == 1
        and out[0].startswith("wrote 32 frames")
        and "2 train, 2 val, 4 test" in out[0]
    )
    assert SynthMeta.load(tmp_path / "cli").clip_frames == 4
    assert Image.open(sheet).size[0] > 4 * 32
    with pytest.raises(ValueError, match="not empty"):
        synth_cli.run(args)
