"""`mi.condition=landmarks`: the MI-flow's condition from the face tool's mouth geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe")


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> torch.Tensor:
    from PIL import Image

    from factorflow.data.synth import generate

    out = tmp_path_factory.mktemp("cond") / "synth"
    generate(out, size=64, frames=8, speakers=4, words=2)
    files = sorted(Path(out).glob("*/*/*_04.png"))[:8]  # one frame of each clip
    return torch.from_numpy(np.stack([np.asarray(Image.open(f)) for f in files])).permute(
        0, 3, 1, 2
    )


def test_the_geometry_ignores_where_the_face_is(frames: torch.Tensor) -> None:
    from torch.nn import functional as F

    from factorflow.factor.condition import LandmarkCondition

    cond = LandmarkCondition(64, 3, 4, 16)
    x = frames[:4].float() / 255 - 0.5
    moved = F.pad(x, (6, 0, 3, 0), mode="replicate")[..., :64, :64]  # the face shifted
    a, b = cond.shapes(x), cond.shapes(moved)
    assert (a[:, -1] == 1).all() and (b[:, -1] == 1).all()
    # The lips moved 6 px (about 0.3 inter-ocular distances) in the frame; in the geometry,
    # which is in inter-ocular distances about the mouth centre, they stay within 0.02.
    assert (a[:, :-2] - b[:, :-2]).abs().mean() < 0.02


def test_mi_flow_and_hybrid_train_and_reenact_on_the_landmark_condition(frames) -> None:
    from factorflow.config import load_config
    from factorflow.models import BatchRandom, build_model

    for name in ("mi", "hybrid"):
        config = load_config(
            "tiny", [f"model={name}", "mi.condition=landmarks", "flow.image_size=64"]
        )
        model = build_model(config)
        if name == "mi":
            model.initialize({"image": frames})
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            for step in range(3):  # the priors start at zero: the condition learns from step 2
                optimizer.zero_grad()
                terms = model.losses({"image": frames}, BatchRandom.seeded(step))
                assert all(torch.isfinite(v).all() for v in terms.values())
                (terms["bpd"].mean() + terms["resample"].mean()).backward()
                optimizer.step()
            assert model.condition.body[0].weight.grad.abs().sum() > 0
        model.eval()
        out = model.reenact(frames[:4], frames[4:5])
        assert out.shape == (4, 3, 64, 64) and out.dtype == torch.uint8
