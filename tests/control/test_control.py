"""Controlled generation: the models' mouth-factor methods, the stats, traversals and words."""

from __future__ import annotations

import pytest
import torch

from factorflow import control
from factorflow.config import load_config
from factorflow.control.generate import mouth_change_ratio
from factorflow.control.stats import principal_directions
from factorflow.models import build_model


def _model(name: str, **overrides):
    config = load_config(
        "tiny",
        {"model": name, "af": {"num_words": 2}, "mc": {"num_speakers": 2}, **overrides},
    )
    torch.manual_seed(0)
    model = build_model(config).eval()
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 4, 3, 16, 16), generator=gen, dtype=torch.uint8)
    if model.batch_kind == "frames":
        model.initialize({"image": frames.flatten(0, 1)})
    else:
        model.initialize({"frames": frames})
    return model


def _clips(n: int = 6, t: int = 4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, t, 3, 16, 16), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("name", ["af", "hybrid", "mi", "motioncode"])
def test_a_face_rendered_with_its_own_mouth_factor_comes_back(name: str) -> None:
    model = _model(name)
    face = _clips()[0, 0]
    factor = model.mouth_factor(face[None])
    assert factor.dim() == 2 and factor.shape[0] == 1
    clip_factor = model.mouth_factor(_clips()[0])
    assert clip_factor.shape == (4, factor.shape[1])
    back = model.render_mouth(face, factor.repeat(3, 1))
    assert back.shape == (3, 3, 16, 16) and back.dtype == torch.uint8
    assert (back.int() - face.int()).abs().max() <= 8  # the flow's 5-bit rounding at most


def test_models_without_the_methods_name_themselves() -> None:
    glow = _model("glow")
    face = _clips()[0, 0]
    with pytest.raises(NotImplementedError, match="glow model has no mouth factor"):
        glow.mouth_factor(face[None])
    with pytest.raises(NotImplementedError, match="af model has no conditional prior"):
        _model("af").draw_mouth(face, face, 2)


@pytest.mark.parametrize("name", ["mi", "hybrid"])
def test_conditional_models_draw_mouths_given_another_frames_condition(name: str) -> None:
    model = _model(name)
    if name == "hybrid":  # fresh encoders give r = 0: give them something to pass on
        with torch.no_grad():
            for p in model.encoders.parameters():
                p.normal_(0, 0.1)
    face, cond = _clips()[0, 0], _clips()[1, 2]
    gen = torch.Generator().manual_seed(0)
    rows = control.draws(model, face, torch.stack([cond, face]), 3, 0.7, gen)
    assert rows.shape == (2, 4, 3, 16, 16) and rows.dtype == torch.uint8
    assert torch.equal(rows[0, 0], cond)  # the first column is the condition frame
    assert not torch.equal(rows[0, 1], rows[0, 2])  # draws differ


def test_principal_directions_find_a_planted_direction() -> None:
    gen = torch.Generator().manual_seed(0)
    axis = torch.zeros(10)
    axis[3] = -1.0
    rows = 5 * torch.randn(200, 1, generator=gen) * axis + 0.1 * torch.randn(200, 10, generator=gen)
    rows = rows - rows.mean(0)
    dirs, sd = principal_directions(rows, 2)
    assert dirs.shape == (2, 10) and torch.allclose(dirs.norm(dim=1), torch.ones(2), atol=1e-4)
    assert dirs[0, 3] > 0.99  # signed so its largest component is positive
    assert 4 < sd[0] < 6 and sd[1] < 0.2


def test_stats_traverse_and_word_clip(tmp_path) -> None:
    model = _model("motioncode")
    clips = _clips()
    stats = control.compute_stats(model, [(c, i % 2) for i, c in enumerate(clips)], ["A", "B"], 3)
    assert stats.directions.shape == (3, 16) and stats.word_motion.shape == (2, 4, 16)
    assert stats.word_clips.tolist() == [3, 3]
    assert stats.word_gain is not None and (stats.word_gain >= 1 - 1e-5).all()
    control.save_stats(stats, tmp_path / "stats")
    again = control.load_stats(tmp_path / "stats")
    assert torch.equal(again.directions, stats.directions) and again.words == ["A", "B"]
    face = clips[0, 0]
    grid = control.traverse(model, face, again, directions=2, steps=5, extent=2.0)
    assert grid.shape == (2, 5, 3, 16, 16)
    assert torch.equal(grid[0, 2], face)  # step 0 is the face itself
    word = control.word_clip(model, face, again, "b")
    assert word.shape == (4, 3, 16, 16)
    # the medoid is one real training clip's motion (a clip of that word)
    motions = [model.mouth_factor(c) - model.mouth_factor(c).mean(0) for c in clips[1::2]]
    assert any(torch.allclose(again.word_medoid[1], m, atol=1e-5) for m in motions)
    assert control.word_clip(model, face, again, "B", sequence="medoid").shape == word.shape
    with pytest.raises(ValueError, match="not in the vocabulary"):
        control.word_clip(model, face, again, "ZEBRA")
    gif = control.sweep_frames(grid)
    assert gif.shape == (8, 16, 2 * 17 - 1, 3)


def test_a_traversal_changes_the_mouth_more_than_the_rest() -> None:
    model = _model("motioncode")
    clips = _clips()
    stats = control.compute_stats(model, [(c, 0) for c in clips], ["A"], 2)
    frozen_grid = control.traverse(model, clips[1, 0], stats, directions=2, steps=5, extent=3.0)
    x0, y0, x1, y1 = model.encoder.bounds
    box = (y0 / 16, y1 / 16, x0 / 16, x1 / 16)
    assert mouth_change_ratio(frozen_grid, box) == 0  # this fresh decoder draws no change
    with torch.no_grad():  # a decoder that does draw one
        for p in model.decoder.parameters():
            p.normal_(0, 0.3)
    grid = control.traverse(model, clips[1, 0], stats, directions=2, steps=5, extent=3.0)
    assert mouth_change_ratio(grid, box) > 5
    # and the ratio itself: a frozen output scores 0, a whole-face change about 1
    frozen = clips[1, 0].expand(2, 5, 3, 16, 16)
    assert mouth_change_ratio(frozen, box) == 0
    noise = torch.randint(0, 256, (2, 5, 3, 16, 16), dtype=torch.uint8)
    assert 0.5 < mouth_change_ratio(noise, box) < 2


def test_the_flow_renderer_moves_the_latent_the_map_gives() -> None:
    model = _model("motioncode")
    clips = _clips()
    stats = control.compute_stats(model, [(c, 0) for c in clips], ["A"], 4, flow_map=True)
    assert stats.flow_map is not None and stats.flow_map.shape == (4, 3 * 16 * 16)
    assert stats.info["flow_gain"] >= 1
    face = clips[2, 1]
    grid = control.traverse(model, face, stats, directions=2, steps=5, renderer="flow")
    assert grid.shape == (2, 5, 3, 16, 16)
    assert (grid[:, 2].int() - face.int()).abs().max() <= 8  # step 0: the face, through the flow
    assert (grid[0, 0].int() - grid[0, 4].int()).abs().sum() > 0
    with pytest.raises(ValueError, match="no flow map"):
        plain = control.compute_stats(model, [(c, 0) for c in clips], ["A"])
        control.traverse(model, face, plain, renderer="flow")
    mi = _model("mi")
    mi_stats = control.compute_stats(mi, [(c, 0) for c in clips], ["A"], 2)
    with pytest.raises(ValueError, match="mi model has no plain flow"):
        control.traverse(mi, face, mi_stats, directions=1, renderer="flow")
