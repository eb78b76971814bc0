"""Nothing lost even when the user follows our own advice (--force never reaches an input), every
checkpoint verified by its SHA-256 record, inputs read as they are, and every refusal one line,
before any work, naming the option or key."""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from faults_testutils import RUN_OVERRIDES, cli, one_line_error, snapshot, write_lrw
from PIL import Image

from factorflow import checkpoint as ckpt
from factorflow.demo import ASSETS


def _step(run: Path, n: int = 6) -> Path:
    return run / "checkpoints" / f"step_{n:08d}"


def _edit_state(step: Path, change) -> None:
    state = json.loads((step / "state.json").read_text())
    change(state)
    (step / "state.json").write_text(json.dumps(state))


# -- item 1, 2: an output never is, lies in or holds an input, even with --force -------------
def test_prepare_force_never_deletes_its_input(tmp_path: Path, capsys) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "talk.mp4").write_bytes(b"not a video")
    (videos / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    for out, how in ((videos, "is the input"), (tmp_path, "holds the input")):
        code, err = cli(capsys, "prepare", "--input", videos, "--out", out, "--force")
        line = one_line_error(err)
        assert code == 2 and how in line and "--force" not in line
    code, err = cli(capsys, "prepare", "--input", videos, "--out", videos / "crops")
    assert code == 2 and "is inside the input" in one_line_error(err)
    assert snapshot(tmp_path) == before


def test_shard_force_never_replaces_the_corpus(tiny_lrw: Path, tmp_path: Path, capsys) -> None:
    data = Path(shutil.copytree(tiny_lrw, tmp_path / "data"))
    before = snapshot(data)
    code, err = cli(capsys, "shard", "--data", data, "--out", data, "--force")
    line = one_line_error(err)
    assert code == 2 and "is the input" in line and "--force" not in line
    assert snapshot(data) == before


def test_every_command_keeps_its_outputs_out_of_its_inputs(
    glow_run: Path, tiny_lrw: Path, tmp_path: Path, capsys
) -> None:
    data = Path(shutil.copytree(tiny_lrw, tmp_path / "data"))
    before, run_before = snapshot(data), snapshot(glow_run)
    code, err = cli(capsys, "train", "--data", data, "--out", data / "run", "--config", "tiny")
    assert code == 2 and "--out" in one_line_error(err) and "inside the input" in err
    code, err = cli(capsys, "sample", "--checkpoint", glow_run, "--out", glow_run / "g.png")
    assert code == 2 and "inside the input" in one_line_error(err)
    code, err = cli(capsys, "evaluate", "--checkpoint", glow_run, "--data", data, "--out",
                    data / "report.json", "--force")  # fmt: skip
    assert code == 2 and "inside the input" in one_line_error(err)
    assert snapshot(data) == before and snapshot(glow_run) == run_before


# -- item 4: every checkpoint carries a SHA-256 record -----------------------------------------
def test_a_checkpoint_without_a_record_is_refused_until_re_recorded(
    run_copy: Path, tmp_path: Path, capsys
) -> None:
    step = _step(run_copy)
    _edit_state(step, lambda s: s.pop("files"))
    out = tmp_path / "grid.png"
    code, err = cli(capsys, "sample", "--checkpoint", step, "--out", out, "--n", "4")
    line = one_line_error(err)
    assert code == 2 and str(step) in line and f"factorflow checkpoint --record {step}" in line
    assert cli(capsys, "checkpoint", "--record", step)[0] == 0
    assert cli(capsys, "checkpoint", step)[0] == 0
    assert cli(capsys, "sample", "--checkpoint", step, "--out", out, "--n", "4")[0] == 0


def test_a_run_of_an_older_version_says_how_to_re_record(run_copy: Path, capsys) -> None:
    for step in ckpt.step_dirs(run_copy / "checkpoints"):
        _edit_state(step, lambda s: s.pop("files"))
    code, err = cli(capsys, "sample", "--checkpoint", run_copy, "--out", run_copy.parent / "g.png")
    assert code == 2 and "factorflow checkpoint --record" in one_line_error(err)
    assert cli(capsys, "checkpoint", "--record", run_copy)[0] == 0
    assert ckpt.resolve(run_copy) == _step(run_copy)


@pytest.mark.parametrize("name", ["demo-af", "demo-motioncode", "real-af"])
def test_shipped_checkpoints_are_recorded_and_a_flipped_byte_is_caught(
    name: str, tmp_path: Path
) -> None:
    assert ckpt.problem(ASSETS / name) is None
    copy = Path(shutil.copytree(ASSETS / name, tmp_path / name))
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="SHA-256"):
        ckpt.load(copy)


def test_re_recording_refuses_a_corrupt_file(run_copy: Path) -> None:
    data = bytearray((_step(run_copy) / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (_step(run_copy) / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="SHA-256"):
        ckpt.record(_step(run_copy))


def test_a_pickle_named_safetensors_is_called_one(run_copy: Path, capsys) -> None:
    step = _step(run_copy)
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    (step / "model.safetensors").write_bytes(buf.getvalue())
    code, err = cli(capsys, "sample", "--checkpoint", step, "--out", run_copy.parent / "g.png")
    assert code == 2 and "not a safetensors file (a pickle?)" in one_line_error(err)


# -- item 5: a stream that ends early is said to ----------------------------------------------
def test_a_cut_faststart_mp4_is_warned_about_when_streamed(tmp_path: Path, caplog) -> None:
    av = pytest.importorskip("av")
    from factorflow.data.video_io import iter_video

    video = tmp_path / "talk.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (120, 32, 32, 3), dtype=np.uint8)
    with av.open(str(video), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        n = sum(1 for _ in iter_video(video))
    assert 0 < n < 120
    assert f"decoded {n} of the 120 frames" in caplog.text and str(video) in caplog.text


# -- item 6: 16-bit images are scaled, not clipped to white --------------------------------
def test_16_bit_png_reads_as_its_grey_levels(tmp_path: Path) -> None:
    from factorflow.data.readers import load_image
    from factorflow.reenact.media import load_clip
    from factorflow.reenact.streaming import read_still

    pixels = np.tile(np.linspace(0, 65535, 16), (16, 1)).astype(np.uint16)
    path = tmp_path / "face16.png"
    Image.fromarray(pixels).save(path)
    assert Image.open(path).mode.startswith("I;16")
    want = np.rint(pixels / 257).astype(np.uint8)
    for image in (load_image(path), load_clip(path)[0][0], read_still(path)):
        assert image.dtype == np.uint8 and image.shape == (16, 16, 3)
        assert np.abs(image[..., 0].astype(int) - want).max() <= 1


# -- item 10: a refused train writes nothing, so the rerun is not refused ----------------------
def test_refused_train_leaves_no_run_folder(
    glow_run: Path, tiny_lrw: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "af"
    base = ["train", "--data", tiny_lrw, "--out", run, "--config", "tiny", "--model", "af",
            "--no-progress", f"af.glow_checkpoint={glow_run}", "data.batch_size=2",
            *RUN_OVERRIDES[1:]]  # fmt: skip
    code, err = cli(capsys, *base, "flow.hidden=8")  # the stage-1 flow does not fit
    assert code == 2 and "does not match this model's config" in one_line_error(err)
    assert not run.exists()
    assert cli(capsys, *base, "--max-steps", "2")[0] == 0


# -- item 11: bad values are exit 2, naming the key ----------------------------------------
@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.batch_size=0", "data.batch_size=0"),
        ("train.lr=.nan", "train.lr"),
        ("train.lr=-1", "train.lr=-1"),
        ("train.log_every=0", "train.log_every=0"),
        ("train.device=tpu", "train.device='tpu'"),
        ("flow.levels=0", "flow.levels"),
    ],
)
def test_bad_config_values_name_the_key_before_any_write(
    override: str, named: str, tiny_lrw: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    code, err = cli(capsys, "train", "--data", tiny_lrw, "--out", run, "--config", "tiny",
                    override)  # fmt: skip
    line = one_line_error(err)
    assert code == 2 and named in line and "Error:" not in line
    assert not run.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_train_on_cuda_without_one_is_exit_2(tiny_lrw: Path, tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "train", "--data", tiny_lrw, "--out", tmp_path / "r", "--config",
                    "tiny", "train.device=cuda")  # fmt: skip
    assert code == 2 and "train.device=cuda" in one_line_error(err)
    assert not (tmp_path / "r").exists()


def test_app_port_out_of_range_is_exit_2(capsys) -> None:
    code, err = cli(capsys, "app", "--port", "99999")
    assert code == 2 and "--port 99999" in one_line_error(err)


def test_state_without_config_and_bad_saved_config(run_copy: Path, capsys) -> None:
    step, out = _step(run_copy), run_copy.parent / "g.png"
    _edit_state(step, lambda s: s.pop("config"))
    code, err = cli(capsys, "sample", "--checkpoint", step, "--out", out)
    assert code == 2 and "no config" in one_line_error(err) and str(step) in err
    step = _step(run_copy, 4)
    _edit_state(step, lambda s: s["config"]["flow"].update(levels="two"))
    code, err = cli(capsys, "sample", "--checkpoint", step, "--out", out)
    line = one_line_error(err)
    assert code == 2 and str(step) in line and "state.json" in line and "flow.levels" in line


# -- items 12, 14: one line, the option's name ----------------------------------------------
def test_prepare_failure_is_one_line_about_the_input(tmp_path: Path, capsys) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "talk.mp4").write_bytes(b"not a video")
    code, err = cli(capsys, "prepare", "--input", videos, "--out", tmp_path / "out")
    line = one_line_error(err)
    assert code == 2 and "talk.mp4" in line and "wrote 0" not in err
    assert "FAILED" not in err and not (tmp_path / "out").exists()


def test_options_are_named_not_internals(tiny_lrw: Path, tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "shard", "--data", tiny_lrw, "--out", tmp_path / "s",
                    "--clips-per-shard", "0")  # fmt: skip
    assert code == 2 and "--clips-per-shard 0" in one_line_error(err)
    pytest.importorskip("av")
    from factorflow.data.video_io import read_video, write_video

    write_video(tmp_path / "a.mp4", np.zeros((2, 16, 16, 3), np.uint8), 25)
    with pytest.raises(ValueError, match="--max-frames 0"):
        read_video(tmp_path / "a.mp4", max_frames=0)


# -- item 15: validation before work -------------------------------------------------------
def test_demo_pairs_zero_is_refused_at_once(tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "demo", "--out", tmp_path / "demo", "--pairs", "0")
    assert code == 2 and "--pairs 0" in one_line_error(err)
    assert not (tmp_path / "demo").exists()


def test_evaluate_checks_the_test_split_first(glow_run: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "one"
    assert cli(capsys, "synth", "--out", data, "--size", "16", "--frames", "2", "--speakers",
               "5", "--words", "2", "--clips-per-pair", "1", "--workers", "1")[0] == 0  # fmt: skip
    base = ["evaluate", "--checkpoint", glow_run, "--out", tmp_path / "r.json"]
    code, err = cli(capsys, *base, "--data", data)
    assert code == 2 and "--clips-per-pair 2" in one_line_error(err)
    shutil.rmtree(data / "test")
    code, err = cli(capsys, *base, "--data", data)
    assert code == 2 and "no test split" in one_line_error(err)
    lrw = write_lrw(tmp_path / "lrw")
    code, err = cli(capsys, *base, "--data", lrw)
    assert code == 2 and "meta.json" in one_line_error(err)
    assert not (tmp_path / "r.json").exists()
