"""Landmarks as data: `synth --landmarks` finds them from the pixels, readers expose them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from factorflow.data.synth import generate

    out = tmp_path_factory.mktemp("lm") / "synth"
    generate(out, size=64, frames=8, speakers=3, words=2, landmarks=True)
    return out


def test_landmarks_come_from_the_pixels_not_the_factors(corpus: Path, tmp_path: Path) -> None:
    import shutil

    from factorflow.data.landmarks import clip_frames, write_landmarks

    corpus = Path(shutil.copytree(corpus, tmp_path / "copy"))
    files = list(clip_frames(corpus))
    before = {f: f.read_bytes() for f in files}
    meta = json.loads((corpus / "meta.json").read_text())
    for clip in meta["clips"]:  # the generator's mouth trajectory of every clip, scrambled
        clip["mouth"] = (np.asarray(clip["mouth"]) * -3 + 1).tolist()
    (corpus / "meta.json").write_text(json.dumps(meta))
    write_landmarks(corpus)
    assert all(f.read_bytes() == before[f] for f in files)


def test_readers_expose_landmarks_that_follow_the_mouth(corpus: Path) -> None:
    from factorflow.data.dataset import ClipDataset
    from factorflow.data.readers import open_reader
    from factorflow.data.synth import SynthMeta
    from factorflow.face.landmarks import found, inner_lip_opening

    reader = open_reader(corpus, split="train")
    clips = ClipDataset(reader, frames=8, size=64)
    meta = SynthMeta.load(corpus)
    truth = {f"{c.word}_{c.clip:05d}": c for c in meta.clips("train")}
    found_open, true_open = [], []
    for i in range(len(clips)):
        landmarks = clips.clip_landmarks(i)
        assert landmarks.shape == (8, 478, 2) and found(landmarks).all()
        assert np.nanmin(landmarks) >= 0 and np.nanmax(landmarks) <= 64  # frame pixels
        found_open += list(inner_lip_opening(landmarks))
        true_open += list(np.asarray(truth[reader.refs[i].clip_id].mouth)[:, 0])
    assert np.corrcoef(found_open, true_open)[0, 1] > 0.7  # judged against the factors only


def test_a_clip_without_landmarks_is_one_clear_error(tiny_lrw: Path) -> None:
    from factorflow.data.dataset import ClipDataset
    from factorflow.data.readers import open_reader

    clips = ClipDataset(open_reader(tiny_lrw, split="train"), frames=8)
    with pytest.raises(ValueError, match=r"has no landmarks file .*synth --landmarks"):
        clips.clip_landmarks(0)
