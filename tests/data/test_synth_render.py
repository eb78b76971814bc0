"""The synthetic face renderer: sizes, mouth motion, masks, identities, exactness."""

import dataclasses

import numpy as np
import pytest

from factorflow.data.synth import (
    MOUTH_FACTORS,
    FaceRenderer,
    Identity,
    Lighting,
    Pose,
    render_clip,
    render_frame,
    sample_identity,
    sample_lighting,
    sample_pose,
)
from factorflow.data.synth.factors import MOUTH_RANGES, MOUTH_TO_IOD

CLOSED = np.zeros(5)
OPEN = np.array([0.6, 0.0, 0.0, 0.5, 0.0])


def person(i: int) -> tuple[Identity, Pose, Lighting]:
    rng = np.random.default_rng([123, i])
    return sample_identity(rng), sample_pose(rng), sample_lighting(rng)


@pytest.mark.parametrize("size", [32, 64, 128, 48])
def test_sizes_shapes_and_types(size):
    rgb, mask = render_frame(*person(0), OPEN, size)
    assert rgb.shape == (size, size, 3) and rgb.dtype == np.uint8
    assert mask.shape == (size, size) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1}
    # LRW-like framing: the mouth sits in the lower middle of the frame.
    ys, xs = np.nonzero(mask)
    assert 0.5 * size < ys.mean() < 0.85 * size
    assert abs(xs.mean() - size / 2) < 0.12 * size


@pytest.mark.parametrize("size", [0, 8, 40, 65])
def test_bad_sizes_are_refused(size):
    with pytest.raises(ValueError, match="multiple of 16"):
        render_frame(*person(0), OPEN, size)


def test_bad_mouth_shapes_are_refused():
    with pytest.raises(ValueError, match="expected \\(5,\\)"):
        render_frame(*person(0), np.zeros(4), 32)
    with pytest.raises(ValueError, match="expected \\(T>0, 5\\)"):
        render_clip(*person(0), np.zeros(5), 32)


def test_render_frame_equals_render_clip_frames():
    mouths = np.array([CLOSED, OPEN, [0.2, -0.2, 0.8, 0.0, 0.0], [0.1, 0.2, 0.0, 1.0, 0.9]])
    frames, masks = render_clip(*person(1), mouths, 64)
    for t, m in enumerate(mouths):
        rgb, mask = render_frame(*person(1), m, 64)
        np.testing.assert_array_equal(rgb, frames[t])
        np.testing.assert_array_equal(mask, masks[t])


def test_rendering_is_deterministic():
    a = render_clip(*person(2), np.array([CLOSED, OPEN]), 64)
    b = render_clip(*person(2), np.array([CLOSED, OPEN]), 64)
    for x, y in zip(a, b, strict=True):
        assert x.tobytes() == y.tobytes()


@pytest.mark.parametrize("i", range(6))
def test_opening_changes_pixels_inside_the_mask(i):
    closed, _ = render_frame(*person(i), CLOSED, 64)
    opened, mask = render_frame(*person(i), OPEN, 64)
    diff = np.abs(opened.astype(int) - closed.astype(int)).sum(-1)
    assert (diff > 30).sum() >= 12, "opening the mouth should visibly change pixels"
    assert diff[mask > 0].sum() / diff.sum() > 0.9
    # ...and the mask is a mouth, not the whole face.
    assert mask.mean() < 0.08


@pytest.mark.parametrize("i", range(6))
def test_mask_covers_the_mouth_with_a_margin(i):
    closed, _ = render_frame(*person(i), CLOSED, 64)
    opened, mask = render_frame(*person(i), OPEN, 64)
    changed = np.abs(opened.astype(int) - closed.astype(int)).sum(-1) > 0
    grown = changed.copy()
    for dy, dx in [(-1, 0), (1, 0), (0, -1), (0, 1)]:
        grown |= np.roll(changed, (dy, dx), axis=(0, 1))
    assert np.all(mask[grown] == 1)


def test_opening_drops_the_lower_lip():
    """Like a jaw: most of the opening happens below the closed lip line."""
    closed, mask = render_frame(*person(0), CLOSED, 128)
    opened, _ = render_frame(*person(0), OPEN, 128)
    rows = np.nonzero(np.abs(opened.astype(int) - closed.astype(int)).sum(-1) > 30)[0]
    lip_line = np.nonzero(mask)[0].mean()
    assert (rows > lip_line).mean() > 0.6


@pytest.mark.parametrize("factor", range(1, 5))
def test_every_mouth_factor_changes_the_mouth(factor):
    idt, pose, light = person(3)
    base = np.array([0.3, 0.0, 0.0, 0.0, 0.0])
    moved = base.copy()
    moved[factor] = MOUTH_RANGES[factor, 1]
    a, mask = render_frame(idt, pose, light, base, 128)
    b, _ = render_frame(idt, pose, light, moved, 128)
    diff = np.abs(a.astype(int) - b.astype(int)).sum(-1)
    assert (diff > 30).sum() >= 10, f"{MOUTH_FACTORS[factor]} should change the mouth"


def test_mask_follows_the_pose():
    idt, _, light = person(4)
    _, centred = render_frame(idt, Pose(), light, OPEN, 64)
    _, moved = render_frame(idt, Pose(dx=0.05, dy=-0.03), light, OPEN, 64)
    before, after = (np.array(np.nonzero(k)).mean(axis=1) for k in (centred, moved))
    np.testing.assert_allclose(after - before, [-0.03 * 64, 0.05 * 64], atol=0.6)  # rows, cols


def test_different_identities_differ():
    frames = np.stack(
        [render_frame(person(i)[0], Pose(), Lighting(), CLOSED, 64)[0] for i in range(12)]
    ).astype(float)
    diff = np.abs(frames[:, None] - frames[None]).mean(axis=(2, 3, 4))
    pairs = diff[np.triu_indices(len(frames), 1)]
    assert pairs.min() > 10.0
    # Also inside the face alone (the centre of the frame), not only through the background.
    face = frames[:, 20:44, 22:42]
    inner = np.abs(face[:, None] - face[None]).mean(axis=(2, 3, 4))
    assert inner[np.triu_indices(len(frames), 1)].min() > 4.0


def test_identities_cover_the_factor_ranges():
    people = [person(i)[0] for i in range(60)]
    assert len({p.hair_style for p in people}) >= 6
    assert len({p.skin for p in people}) == 60
    assert any(p.glasses for p in people) and not all(p.glasses for p in people)
    widths = [p.face_w for p in people]
    assert max(widths) - min(widths) > 0.02


def test_pose_and_lighting_change_the_frame_but_not_the_identity():
    idt = person(5)[0]
    plain, _ = render_frame(idt, Pose(), Lighting(), CLOSED, 64)
    posed, _ = render_frame(idt, Pose(angle=5.0, scale=1.05), Lighting(), CLOSED, 64)
    lit, _ = render_frame(idt, Pose(), Lighting(gain=1.1, shade_strength=0.15), CLOSED, 64)
    assert np.abs(posed.astype(int) - plain).mean() > 2
    assert np.abs(lit.astype(int) - plain).mean() > 2
    other, _ = render_frame(person(6)[0], Pose(), Lighting(), CLOSED, 64)
    assert np.abs(lit.astype(int) - plain).mean() < np.abs(other.astype(int) - plain).mean()


@pytest.mark.parametrize("i", range(20))
def test_mouth_width_to_inter_ocular_distance_stays_human(i):
    idt = person(i)[0]
    renderer = FaceRenderer(idt, Pose(), Lighting(), 64)
    for width, rounding, smile in [(0.0, 0.0, 0.0), (-0.3, 1.0, 0.0), (0.3, 0.0, 1.0)]:
        ratio = renderer.mouth_to_iod(np.array([0.3, width, rounding, 0.0, smile]))
        assert MOUTH_TO_IOD[0] - 1e-9 <= ratio <= MOUTH_TO_IOD[1] + 1e-9
    assert 0.72 <= renderer.mouth_to_iod(CLOSED) <= 0.96


def test_factors_round_trip_through_dicts():
    idt, pose, light = person(7)
    assert Identity.from_dict(idt.to_dict()) == idt
    assert Pose.from_dict(pose.to_dict()) == pose
    assert Lighting.from_dict(light.to_dict()) == light
    bad = dict(idt.to_dict(), nose_colour=[1, 2, 3])
    with pytest.raises(ValueError, match="nose_colour"):
        Identity.from_dict(bad)
    with pytest.raises(ValueError, match="hair_style"):
        dataclasses.replace(idt, hair_style="mohawk")


@pytest.mark.parametrize("small", [32, 64])
def test_sizes_render_the_same_face(small):
    """Anti-aliased rendering: a small frame is the 128 px frame box-downsampled, up to the
    rounding of line widths (a one-pixel shift costs 3-7 grey levels)."""
    for i in range(3):
        big, _ = render_frame(*person(i), OPEN, 128)
        f = 128 // small
        reduced = big.reshape(small, f, small, f, 3).mean(axis=(1, 3))
        rgb, _ = render_frame(*person(i), OPEN, small)
        assert np.abs(rgb - reduced).mean() < (1.2 if small == 64 else 2.5)
