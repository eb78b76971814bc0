"""Nothing lost, nothing cryptic: every refused command leaves earlier outputs byte-identical, and
every bad input or fault is one line naming the file or value, exit 2 (input) or 1 (fault)."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from faults_testutils import RUN_OVERRIDES, cli, one_line_error, snapshot, write_lrw
from PIL import Image

from factorflow.cli import main as cli_main

DRIVER = "val/ABOUT/ABOUT_00000"
TARGET = "val/BELOW/BELOW_00001"


def _reenact(run: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["reenact", "--checkpoint", run, "--driver", data / DRIVER, "--target", data / TARGET,
            "--out", out, "--no-align", *extra]  # fmt: skip


# -- outputs are never clobbered ------------------------------------------------------------
def test_reenact_never_deletes_an_existing_folder(
    glow_run: Path, tiny_lrw: Path, tmp_path: Path, capsys
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    before, run_before = snapshot(notes), snapshot(glow_run)
    code, err = cli(capsys, *_reenact(glow_run, tiny_lrw, notes))
    assert code == 2 and "--force" in one_line_error(err)
    code, err = cli(capsys, *_reenact(glow_run, tiny_lrw, notes, "--force"))
    assert code == 2 and "todo.txt" in one_line_error(err)  # not an earlier result folder
    code, err = cli(capsys, *_reenact(glow_run, tiny_lrw, glow_run, "--force"))
    assert code == 2 and str(glow_run) in one_line_error(err)
    assert snapshot(notes) == before and snapshot(glow_run) == run_before


def test_reenact_output_names(
    glow_run: Path, tiny_lrw: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = cli(capsys, *_reenact(glow_run, tiny_lrw, Path("result.png")))
    assert code == 2 and "has 8" in one_line_error(err) and not Path("result.png").exists()
    code, err = cli(capsys, *_reenact(glow_run, tiny_lrw, Path("."), "--force"))
    assert code == 2 and "current" in one_line_error(err)
    code, err = cli(capsys, *_reenact(glow_run, tiny_lrw, Path("out.avi")))
    assert code == 2 and ".mp4, .gif" in one_line_error(err)
    frames = tmp_path / "frames"
    assert cli(capsys, *_reenact(glow_run, tiny_lrw, frames))[0] == 0
    first = snapshot(frames)
    assert len(first) == 8
    assert cli(capsys, *_reenact(glow_run, tiny_lrw, frames))[0] == 2
    assert snapshot(frames) == first
    assert cli(capsys, *_reenact(glow_run, tiny_lrw, frames, "--force"))[0] == 0  # own result
    one = tmp_path / "one.png"
    single = ["reenact", "--checkpoint", glow_run, "--driver", f"{tiny_lrw / DRIVER}_00.png",
              "--target", tiny_lrw / TARGET, "--out", one, "--no-align"]  # fmt: skip
    assert cli(capsys, *single)[0] == 0 and Image.open(one).size == (16, 16)


def test_outputs_respect_the_umask(glow_run: Path, tmp_path: Path, capsys) -> None:
    old = os.umask(0o022)
    try:
        out = tmp_path / "grid.png"
        assert cli(capsys, "sample", "--checkpoint", glow_run, "--out", out, "--n", "4")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    code, err = cli(capsys, "sample", "--checkpoint", glow_run, "--out", out, "--n", "4")
    assert code == 2 and "--force" in one_line_error(err)


def test_demo_keeps_another_dataset_and_rejects_ship_without_train(tmp_path: Path, capsys) -> None:
    data = write_lrw(tmp_path / "demo" / "data", clips={"train": 1})
    (data / "meta.json").write_text(json.dumps({"size": 32, "seed": 3, "clips": []}))
    before = snapshot(tmp_path / "demo")
    code, err = cli(capsys, "demo", "--out", tmp_path / "demo", "--no-progress")
    assert code == 2 and "another dataset" in one_line_error(err)
    code, err = cli(capsys, "demo", "--out", tmp_path / "demo", "--ship")
    assert code == 2 and "--train" in one_line_error(err)
    assert snapshot(tmp_path / "demo") == before


# -- a run folder is continued only with --resume, and refusing changes nothing ---------------
def test_refused_train_changes_nothing(run_copy: Path, tiny_lrw: Path, capsys) -> None:
    base = ["train", "--data", tiny_lrw, "--out", run_copy, "--config", "tiny", "--no-progress"]
    before = snapshot(run_copy)
    code, err = cli(capsys, *base, *RUN_OVERRIDES)
    assert code == 2 and "--resume" in one_line_error(err)
    code, err = cli(capsys, *base, "--resume", *RUN_OVERRIDES, "flow.hidden=8")
    assert code == 2 and "flow.hidden" in one_line_error(err)
    assert snapshot(run_copy) == before
    code, err = cli(capsys, *base, "--max-steps", "-1")
    assert code == 2 and "--max-steps -1" in one_line_error(err)


def test_refused_two_stage_resume_leaves_stage1_alone(
    glow_run: Path, tiny_lrw: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "af"
    base = ["train", "--data", tiny_lrw, "--out", run, "--config", "tiny", "--model", "af",
            "--no-progress", "af.stage1_steps=2", "data.batch_size=2",
            *RUN_OVERRIDES[1:]]  # fmt: skip
    assert cli(capsys, *base, "--max-steps", "2")[0] == 0
    before = snapshot(run)
    code, err = cli(capsys, *base, "--max-steps", "4", "--resume", "af.encoder_hidden=4")
    assert code == 2 and "af.encoder_hidden" in one_line_error(err)
    code, err = cli(capsys, *base, "--max-steps", "4")
    assert code == 2 and "--resume" in one_line_error(err)
    assert snapshot(run) == before


def test_af_validates_a_last_batch_of_one_clip(
    glow_run: Path, tiny_lrw: Path, tmp_path: Path, capsys
) -> None:
    # 4 val clips in batches of 3: the last batch holds one clip, which AF cannot pair
    code, err = cli(
        capsys, "train", "--data", tiny_lrw, "--out", tmp_path / "af", "--config", "tiny",
        "--model", "af", "--max-steps", "2", "--no-progress", f"af.glow_checkpoint={glow_run}",
        "data.batch_size=2", "data.val_batch_size=3", "train.val_every=2",
    )  # fmt: skip
    assert code == 0, err
    rows = [json.loads(x) for x in (tmp_path / "af" / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "val" and np.isfinite(r["pair"]) for r in rows)
    code, err = cli(
        capsys, "train", "--data", tiny_lrw, "--out", tmp_path / "af1", "--config", "tiny",
        "--model", "af", f"af.glow_checkpoint={glow_run}", "data.batch_size=1",
    )  # fmt: skip
    assert code == 2 and "data.batch_size=1" in one_line_error(err)


# -- storage faults ---------------------------------------------------------------------------
@pytest.mark.parametrize("out_name", ["out.gif", "frames", "grid.png"])
def test_read_only_output_is_one_line_and_leaves_no_temporary(
    glow_run: Path, tiny_lrw: Path, tmp_path: Path, capsys, monkeypatch, out_name: str
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    real = os.replace

    def read_only(src, dst, *args, **kwargs):  # what a read-only mount does to the rename
        if Path(dst).parent == folder:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", read_only)
    out = folder / out_name
    if out_name == "grid.png":
        argv = ["sample", "--checkpoint", glow_run, "--out", out, "--n", "4"]
    else:
        argv = _reenact(glow_run, tiny_lrw, out)
    code, err = cli(capsys, *argv)
    line = one_line_error(err)
    assert code == 1 and "Read-only file system" in line and str(out) in line
    assert ".tmp" not in line
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_really_read_only_folder(glow_run: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, err = cli(capsys, "sample", "--checkpoint", glow_run, "--out", folder / "g.png")
    finally:
        folder.chmod(0o755)
    assert code == 1 and "Permission denied" in one_line_error(err)
    assert list(folder.iterdir()) == []


def test_disk_full_in_synth_leaves_no_temporary(tmp_path: Path, capsys, monkeypatch) -> None:
    import importlib

    gen = importlib.import_module("factorflow.data.synth.generate")

    real = gen._write_clip
    calls = []

    def full(job):
        calls.append(job)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), job[3])
        return real(job)

    monkeypatch.setattr(gen, "_write_clip", full)
    code, err = cli(capsys, "synth", "--out", tmp_path / "d", "--size", "16", "--frames", "2",
                    "--speakers", "3", "--words", "1", "--workers", "1")  # fmt: skip
    assert code == 1 and "No space left on device" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_synth_checks_sizes_and_sweeps_a_killed_run(tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "synth", "--out", tmp_path / "d", "--frames", "1000000000")
    assert code == 2 and "frames=1000000000" in one_line_error(err)
    code, err = cli(capsys, "synth", "--out", tmp_path / "d", "--speakers", "10000000")
    assert code == 2 and "GB" in one_line_error(err)
    stale = tmp_path / ".d.tmp-999999999-0abc"  # left by a killed synth (no such process)
    stale.mkdir()
    assert cli(capsys, "synth", "--out", tmp_path / "d", "--size", "16", "--frames", "2",
               "--speakers", "3", "--words", "1", "--workers", "1")[0] == 0  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


# -- corrupt and foreign inputs ------------------------------------------------------------------
def test_meta_json_from_another_tool(tmp_path: Path, capsys) -> None:
    data = write_lrw(tmp_path / "data")
    (data / "meta.json").write_text(json.dumps({"words": [{"w": "ABOUT"}], "clips": []}))
    code, err = cli(capsys, "train", "--data", data, "--out", tmp_path / "run", "--config",
                    "tiny", "--model", "af")  # fmt: skip
    line = one_line_error(err)
    assert code == 2 and str(data / "meta.json") in line and "'words'" in line
    assert not (tmp_path / "run").exists()


def test_corrupt_config_yaml(tmp_path: Path, tiny_lrw: Path, capsys) -> None:
    bad = tmp_path / "my.yaml"
    bad.write_text("flow: {levels: 2\ntrain: [")
    code, err = cli(capsys, "train", "--data", tiny_lrw, "--out", tmp_path / "r", "--config", bad)
    assert code == 2 and str(bad) in one_line_error(err) and "YAML" in err


def test_one_pixel_frames(tmp_path: Path, capsys) -> None:
    data = write_lrw(tmp_path / "data", size=1, frames=2)
    code, err = cli(capsys, "train", "--data", data, "--out", tmp_path / "r", "--config", "tiny")
    line = one_line_error(err)
    assert code == 2 and "1x1 frames, expected 16x16" in line and "--size 16" in line
    assert "resize=True" not in line


def test_corrupt_image_and_video(glow_run: Path, tmp_path: Path, capsys, caplog) -> None:
    pytest.importorskip("av")
    import av

    from factorflow.data.video_io import read_video

    broken = tmp_path / "face.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, err = cli(capsys, "reenact", "--checkpoint", glow_run, "--driver", broken, "--target",
                    broken, "--out", tmp_path / "o.gif", "--no-align")  # fmt: skip
    assert code == 2 and f"cannot read image {broken}" in one_line_error(err)
    video = tmp_path / "talk.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (120, 32, 32, 3), dtype=np.uint8)
    with av.open(str(video), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)  # header (moov) first, then frames
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    with caplog.at_level(logging.WARNING):
        cut, _ = read_video(video)
    assert 0 < len(cut) < 120
    assert f"decoded {len(cut)} of the 120 frames" in caplog.text and str(video) in caplog.text


def test_corrupt_landmarks(tmp_path: Path) -> None:
    from factorflow.data.prepare.preview import contact_sheet

    npz = tmp_path / "data" / "train" / "ABOUT" / "ABOUT_00000.npz"
    npz.parent.mkdir(parents=True)
    npz.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match=f"cannot read landmarks {npz}"):
        contact_sheet(tmp_path / "v.mp4", tmp_path / "data")


def test_unexpected_error_is_one_line_and_debug_shows_it(monkeypatch, capsys) -> None:
    from factorflow.cli import env

    def boom(args):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr(env, "run", boom)
    code, err = cli(capsys, "env")
    line = one_line_error(err)
    assert code == 1 and "RuntimeError: something inside broke" in line and "--debug" in line
    with pytest.raises(RuntimeError):
        cli_main.main(["env", "--debug"])


def test_native_log_noise_is_dropped_and_the_rest_kept(capfd) -> None:
    noise = (
        b"W0000 00:00:1796381619.451849   10318 inference_feedback_manager.cc:114] Feedback\n"
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    )
    with cli_main.quiet_native_logs():
        os.write(2, b"\rbar:  50%|#####")
        os.write(2, noise)
        os.write(2, b"E0000 00:00:1.2 1 x.cc:1] a real error\nfactorflow: kept\n")
    err = capfd.readouterr().err
    assert err == "\rbar:  50%|#####E0000 00:00:1.2 1 x.cc:1] a real error\nfactorflow: kept\n"


def test_bad_input_under_python_dash_m_is_exit_2(tmp_path: Path) -> None:
    # torchrun runs `python -m factorflow.cli.main`: the CLI module is then __main__
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "factorflow.cli.main", "train", "--data", str(tmp_path / "no"),
         "--out", str(tmp_path / "r")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and one_line_error(out.stderr).endswith("is not a folder")


def test_bad_device_and_rate_are_refused_before_any_work(
    glow_run: Path, tiny_lrw: Path, tmp_path: Path, capsys
) -> None:
    code, err = cli(capsys, "sample", "--checkpoint", glow_run, "--out", tmp_path / "g.png",
                    "--device", "tpu")  # fmt: skip
    assert code == 2 and "--device 'tpu'" in one_line_error(err)
    code, err = cli(capsys, *_reenact(glow_run, tiny_lrw, tmp_path / "o.gif", "--fps", "0"))
    assert code == 2 and "--fps 0" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []
