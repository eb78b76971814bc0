"""Property-based fuzzing: the config parser, the data readers and the image/video loaders take
any input without an uncaught exception, and every rejection is a ValueError naming its file."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factorflow.config import Config, load_config, to_dict
from factorflow.data.readers import load_image, open_reader
from factorflow.data.video_io import read_video
from factorflow.reenact.media import load_clip

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _keys() -> list[str]:
    return [f"{s}.{k}" for s, v in to_dict(Config()).items() if isinstance(v, dict) for k in v]


scalars = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.none(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=4), scalars, max_size=2),
)


@FAST
@given(
    st.lists(
        st.tuples(st.one_of(st.sampled_from(_keys()), st.text(max_size=10)), values), max_size=4
    )
)
def test_config_overrides_parse_or_name_the_key(items: list[tuple[str, object]]) -> None:
    overrides = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in items]
    try:
        config = load_config("tiny", overrides)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(config, Config)


@FAST
@given(st.one_of(st.text(max_size=200), values.map(lambda v: yaml.safe_dump(v))))
def test_config_file_parses_or_names_the_file(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "my.yaml"
        path.write_text(text)
        try:
            load_config(str(path))
        except ValueError as exc:
            assert str(path) in str(exc) or "config key" in str(exc) or "must" in str(exc)


def _lrw(root: Path) -> Path:
    from PIL import Image

    folder = root / "train" / "ABOUT"
    folder.mkdir(parents=True)
    for f in range(2):
        Image.new("RGB", (8, 8), (f * 50, 80, 90)).save(folder / f"ABOUT_00000_{f:02d}.png")
    return root


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
meta_docs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "words": json_values,
            "speakers": json_values,
            "clips": st.lists(
                st.one_of(
                    json_values,
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "clip": json_values,
                            "word": json_values,
                            "split": json_values,
                            "speaker": json_values,
                        },
                    ),
                ),
                max_size=3,
            ),
        },
    ),
)


@FAST
@given(st.one_of(meta_docs.map(json.dumps), st.text(max_size=50)))
def test_lrw_reader_takes_any_meta_json(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _lrw(Path(tmp))
        (root / "meta.json").write_text(text)
        try:
            reader = open_reader(root, split="train")
        except ValueError as exc:
            assert "meta.json" in str(exc)
        else:
            assert len(reader) == 1 and reader.words == sorted(reader.words)


@FAST
@given(st.binary(max_size=300), st.sampled_from([".png", ".jpg", ".webp", ".bmp"]))
def test_image_loaders_take_any_bytes(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"frame{suffix}"
        path.write_bytes(data)
        for load in (load_image, lambda p: load_clip(p)[0][0]):
            try:
                image = load(path)
            except ValueError as exc:
                assert str(path) in str(exc)
            else:
                assert image.dtype == np.uint8 and image.ndim == 3


@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    pytest.importorskip("av")
    from factorflow.data.video_io import write_video

    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (12, 16, 16, 3), dtype=np.uint8)
    write_video(path, frames, 25)
    return path.read_bytes()


@FAST
@given(data=st.data())
def test_video_loader_takes_cut_and_damaged_files(small_mp4: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(small_mp4)))
    blob = bytearray(small_mp4[:cut])
    for _ in range(data.draw(st.integers(0, 3))):
        if blob:
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        path.write_bytes(bytes(blob))
        try:
            frames, fps = read_video(path)
        except ValueError as exc:
            assert str(path) in str(exc)
        else:
            assert frames.dtype == np.uint8 and frames.ndim == 4 and fps > 0


@FAST
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_grid_alignments_parse_or_name_the_file(data: bytes) -> None:
    from factorflow.data.readers import read_align

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bbaf2n.align"
        path.write_bytes(data)
        try:
            words = read_align(path)
        except ValueError as exc:
            assert str(path) in str(exc)
        else:
            assert all(w.start < w.stop for w in words)
