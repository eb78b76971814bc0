"""Property-based fuzzing: the config parser, the data readers and the image/video loaders take
any input without an uncaught exception, and every rejection is a ValueError naming its file."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
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


@FAST
@given(
    st.sampled_from(["I;16", "I", "F", "L", "LA", "P", "1", "RGBA", "CMYK"]),
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(0, 2**31 - 1),
)
def test_images_of_every_mode_and_depth_read_as_rgb8(mode: str, h: int, w: int, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    dtype, top = {"I;16": (np.uint16, 65535), "I": (np.int32, 65535), "F": (np.float32, 1.0)}.get(
        mode, (np.uint8, 255)
    )
    pixels = (rng.random((h, w)) * top).astype(dtype)
    image = Image.fromarray(pixels, mode) if mode in ("I;16", "I", "F") else Image.new(mode, (w, h))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("frame.tiff" if mode in ("I", "F", "CMYK") else "frame.png")
        image.save(path)
        out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (h, w, 3)
    if mode in ("I;16", "I", "F"):  # scaled from the white level, not clipped to white
        assert np.abs(out[..., 0] / 255.0 - pixels / top).max() <= 1 / 255 + 1e-6


def _damaged(data: st.DataObject, blob: bytes) -> bytes:
    cut = bytearray(blob[: data.draw(st.integers(0, len(blob)))])
    for _ in range(data.draw(st.integers(0, 4))):
        if cut:
            cut[data.draw(st.integers(0, len(cut) - 1))] = data.draw(st.integers(0, 255))
    return bytes(cut)


@FAST
@given(data=st.data())
def test_landmark_files_load_or_name_the_file(data: st.DataObject) -> None:
    from factorflow.data.readers.base import ClipRef, Reader

    good = io.BytesIO()
    np.savez(good, landmarks_crop=np.zeros((2, 478, 2), np.float32))
    blob = data.draw(st.one_of(st.binary(max_size=200), st.just(good.getvalue())))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ABOUT_00000.npz"
        path.write_bytes(_damaged(data, blob))
        ref = ClipRef("ABOUT_00000", str(path), files=(str(Path(tmp) / "ABOUT_00000_00.png"),))
        try:
            landmarks = Reader.load_landmarks(ref)
        except ValueError as exc:
            assert str(path) in str(exc)
        else:
            assert landmarks.ndim == 3 and landmarks.shape[2] == 2


@pytest.fixture(scope="module")
def shard_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from faults_testutils import write_lrw

    from factorflow.data.shards import convert

    root = tmp_path_factory.mktemp("shards")
    convert(write_lrw(root / "data", size=8, frames=2, clips={"train": 1}), root / "s", "lrw")
    return root / "s"


@FAST
@given(data=st.data())
def test_shard_tars_read_or_name_the_shard(shard_folder: Path, data: st.DataObject) -> None:
    import shutil

    from factorflow.data.shards import ShardClipDataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(shard_folder, Path(tmp) / "s"))
        shard = sorted(root.glob("*.tar"))[0]
        shard.write_bytes(_damaged(data, shard.read_bytes()))
        try:
            dataset = ShardClipDataset(root, frames=2)
            for i in range(len(dataset)):
                _, frames = dataset.clip_frames(i)
                assert frames.dtype == torch.uint8
        except ValueError as exc:
            assert str(shard) in str(exc)


@pytest.fixture(scope="module")
def one_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from factorflow import checkpoint as ckpt
    from factorflow.config import to_dict
    from factorflow.models import build_model

    config = load_config("tiny", ["flow.image_size=8", "flow.levels=1", "flow.steps=1"])
    run = tmp_path_factory.mktemp("ckpt")
    return ckpt.save(run, 1, build_model(config), None, to_dict(config))


state_edits = st.lists(
    st.tuples(
        st.sampled_from(["format", "config", "files", "step", "version", "model.safetensors"]),
        json_values,
    ),
    max_size=3,
)


@FAST
@given(st.one_of(state_edits, st.text(max_size=40)))
def test_state_json_loads_or_names_the_checkpoint(one_step: Path, edits) -> None:
    import shutil

    from factorflow import checkpoint as ckpt

    with tempfile.TemporaryDirectory() as tmp:
        step = Path(shutil.copytree(one_step, Path(tmp) / "step_00000001"))
        state = json.loads((step / "state.json").read_text())
        if isinstance(edits, str):
            text = edits
        else:
            for key, value in edits:
                if key == "model.safetensors":
                    state.setdefault("files", {})
                    if isinstance(state["files"], dict):
                        state["files"][key] = value
                else:
                    state[key] = value
            text = json.dumps(state)
        (step / "state.json").write_text(text)
        try:
            loaded = ckpt.load(step)
        except ValueError as exc:
            assert str(step) in str(exc)
        else:
            assert loaded.model
