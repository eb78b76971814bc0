"""The app with the shipped mouth flow: offered first and by default, a `--checkpoint` folder of
a mouth-paste model dispatched on its registry entry, and runs through `reenact_mouth` on a real
clip and a packaged still."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from factorflow.app import run as app_run
from factorflow.app.run import RunRequest, figures_markdown, motion_overrides, run_reenactment
from factorflow.app.settings import AppSettings
from factorflow.app.sources import ASSETS, ModelCache, model_choices, model_spec
from factorflow.app.validate import InputError

MOUTHFLOW = ASSETS / "mouthflow"
# What the page shows of a mouth-flow run: the LipSyncMeter summary and the frames counted.
SHOWN = (
    "opening_corr",
    "range_ratio",
    "sharpness_ratio",
    "identity_shift_iod",
    "driver_no_face",
    "target_no_face",
)


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


def test_the_mouth_flow_is_offered_first(tmp_path: Path) -> None:
    choices = model_choices()
    first = next(iter(choices))
    assert first == "mouthflow (shipped: mouth flow for real faces (native resolution))"
    assert [p.name for p in choices.values()] == ["mouthflow", "real-af", "demo-af"]
    assert model_spec(MOUTHFLOW).pipeline == "mouth-paste"
    assert model_spec(ASSETS / "real-af").pipeline == "crops"
    assert model_spec(MOUTHFLOW).use_time_keys == ("mouthflow.temperature",)
    assert motion_overrides(MOUTHFLOW, "r") == ()
    with pytest.raises(InputError, match="mouthflow takes no motion mode"):
        motion_overrides(MOUTHFLOW, "residual")


def test_a_mouth_flow_folder_given_is_offered_and_checked(tmp_path: Path) -> None:
    from factorflow.checkpoint import CheckpointError

    mine = tmp_path / "runs" / "mouthflow2"
    shutil.copytree(MOUTHFLOW, mine)
    choices = model_choices([mine, ASSETS / "real-af"])
    assert choices[str(mine)] == mine and model_spec(mine).pipeline == "mouth-paste"
    assert choices[str(ASSETS / "real-af")] == ASSETS / "real-af"  # a run folder, as before
    (mine / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="mouthflow2: model.safetensors is missing"):
        model_choices([mine])


def test_a_still_says_what_a_real_clip_says(media, models, tmp_path: Path) -> None:
    from factorflow.data.video_io import read_video
    from factorflow.metrics import lipsync

    meter = lipsync.LipSyncMeter
    calls: list[tuple[float, str]] = []
    request = RunRequest(media["target"], media["open_driver"], MOUTHFLOW)
    result = run_reenactment(
        request, AppSettings(workdir=tmp_path), models, lambda f, what: calls.append((f, what))
    )
    assert lipsync.LipSyncMeter is meter  # the recording subclass is gone again
    frames, _ = read_video(result.video)
    n = media["open_frames"]
    assert result.download == result.video and result.video.suffix == ".mp4"
    assert result.video.name == "grace_hopper_says_carphone_open.mp4"
    assert frames.shape == (n, 600, 512, 3) and result.frames == n  # the target's own size
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    said = [what for _, what in calls]
    assert set(app_run.MOUTH_STAGES) - {"writing the gif"} <= {w.split(" (")[0] for w in said}
    assert sum("frame chunk" in w for w in said) == (n + 7) // 8  # fed per chunk of 8 frames
    m = result.metrics
    assert set(SHOWN) <= set(m) and m["frames"] == n
    assert all(np.isfinite(m[k]) for k in SHOWN)
    assert m["driver_no_face"] == m["target_no_face"] == 0 and m["outside_max_diff"] == 0
    # The output's mouth follows the driver's: it opens and closes again.
    assert m["opening_corr"] > 0.7 and m["range_ratio"] > 0.3
    out = result.output_opening
    assert out.shape == result.driver_opening.shape == (n,) and np.isfinite(out).all()
    assert out.max() - out.min() > 0.2 and out.argmax() not in (0, n - 1)
    assert result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = figures_markdown(result)
    for label in ("mouth opening correlation", "opening range, output / driver", "sharpness"):
        assert label in table
    for label in ("squeeze-grid energy", "lips keep", "quiet frames"):
        assert label in table
    assert "two-sample test not run" in table
    assert "driver frames without a face (passed through) | 0 |" in table


def test_gif_side_by_side_and_a_second_run_reuses_the_model(media, models, tmp_path) -> None:
    from factorflow.data.video_io import read_video

    model, _ = models.get(MOUTHFLOW)
    request = RunRequest(media["target"], media["driver"], MOUTHFLOW, side_by_side=True, fmt="gif")
    result = run_reenactment(request, AppSettings(workdir=tmp_path), models)
    assert models.get(MOUTHFLOW)[0] is model
    assert result.download.suffix == ".gif" and result.video.suffix == ".mp4"
    gif, _ = read_video(result.download)
    mp4, _ = read_video(result.video)
    assert len(gif) == len(mp4) == media["frames"] == result.frames
    assert mp4.shape[2] > 2 * 512 and gif.shape[1:3] == mp4.shape[1:3]  # driver | target | out


def test_bad_input_is_one_line_naming_the_file(media, models, tmp_path: Path) -> None:
    from factorflow.data.video_io import write_video
    from factorflow.metrics import lipsync

    meter = lipsync.LipSyncMeter
    noise = np.random.default_rng(0).integers(0, 255, (4, 144, 176, 3), dtype=np.uint8)
    write_video(tmp_path / "static.mp4", noise, 25.0)
    settings = AppSettings(workdir=tmp_path / "work")
    request = RunRequest(media["target"], tmp_path / "static.mp4", MOUTHFLOW)
    with pytest.raises(InputError, match=r"^no face found in driver static\.mp4 \(checked 4") as e:
        run_reenactment(request, settings, models)
    assert str(tmp_path) not in str(e.value) and "\n" not in str(e.value)
    assert lipsync.LipSyncMeter is meter
    from PIL import Image

    Image.fromarray(noise[0]).save(tmp_path / "wall.png")
    request = RunRequest(tmp_path / "wall.png", media["driver"], MOUTHFLOW)
    with pytest.raises(InputError, match=r"^no face found in target wall\.png \(checked 1"):
        run_reenactment(request, settings, models)
    with pytest.raises(InputError, match=r"driving clip notes\.mp4 is not a video"):
        run_reenactment(RunRequest(media["target"], media["text"], MOUTHFLOW), settings, models)
    with pytest.raises(InputError, match="takes no motion mode"):
        run_reenactment(
            RunRequest(media["target"], media["driver"], MOUTHFLOW, motion="residual"),
            settings,
            models,
        )
