"""Alignment maths (Umeyama, inverse, smoothing, warps) and the gap/clip planning of prepare."""

import math

import numpy as np
import pytest

from factorflow.data.prepare.pipeline import fill_gaps, interpolate_missing
from factorflow.data.prepare.planning import Segment, make_settings, plan_clips, runs, safe_word
from factorflow.face.align import (
    TEMPLATE,
    alignment_transforms,
    inverse,
    smooth_track,
    template_points,
    transform_points,
    umeyama,
    warp,
)


def similarity(scale, degrees, tx, ty):
    a = math.radians(degrees)
    return np.array(
        [
            [scale * math.cos(a), -scale * math.sin(a), tx],
            [scale * math.sin(a), scale * math.cos(a), ty],
        ]
    )


def test_umeyama_recovers_a_similarity():
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    true = similarity(0.37, 23.0, -4.0, 11.5)
    dst = transform_points(src, true)
    np.testing.assert_allclose(umeyama(src, dst), true, atol=1e-10)
    weights = np.array([1.0, 0.0, 2.0, 1.0, 0.5])
    np.testing.assert_allclose(umeyama(src, dst, weights), true, atol=1e-10)


def test_umeyama_never_reflects():
    src = np.random.default_rng(1).normal(size=(5, 2))
    mirrored = src * [-1, 1]
    matrix = umeyama(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0
    with pytest.raises(ValueError, match="coincident"):
        umeyama(np.ones((5, 2)), src)


def test_template_framing():
    points = template_points(64)
    eyes_y, nose_y, mouth_y = points[0, 1], points[2, 1], points[3, 1]
    assert eyes_y < nose_y < mouth_y and points[0, 0] < 31.5 < points[1, 0]
    mouth_width = TEMPLATE[4, 0] - TEMPLATE[3, 0]
    inter_ocular = TEMPLATE[1, 0] - TEMPLATE[0, 0]
    assert 0.64 <= mouth_width / inter_ocular <= 1.09  # DATA.md's measured range
    assert 0.55 < TEMPLATE[3:, 1].mean() < 0.8 and TEMPLATE[:, 0].mean() == pytest.approx(0.5)


def test_alignment_maps_points_onto_template_and_inverse():
    rng = np.random.default_rng(2)
    true = np.stack([similarity(3.0, d, 10, -20) for d in (-10.0, 5.0)])
    points = np.stack([transform_points(template_points(64), inverse(m)) for m in true])
    matrices = alignment_transforms(points + rng.normal(0, 1e-9, points.shape), 64)
    np.testing.assert_allclose(matrices, true, atol=1e-6)
    np.testing.assert_allclose(transform_points(points, matrices), [template_points(64)] * 2)
    m = true[0]
    round_trip = transform_points(transform_points(points[0], m), inverse(m))
    np.testing.assert_allclose(round_trip, points[0], atol=1e-9)


def test_smooth_track():
    rng = np.random.default_rng(3)
    constant = np.full((20, 5, 2), 7.0)
    np.testing.assert_allclose(smooth_track(constant, 2.0), constant)
    noisy = np.linspace(0, 10, 200)[:, None] + rng.normal(0, 1, (200, 1))
    smoothed = smooth_track(noisy, 3.0)
    assert smoothed.shape == noisy.shape
    assert np.std(np.diff(smoothed[:, 0])) < 0.2 * np.std(np.diff(noisy[:, 0]))
    bump = np.exp(-0.5 * ((np.arange(41) - 20) / 3.0) ** 2)
    assert np.argmax(smooth_track(bump, 2.0)) == 20  # zero phase: no lag
    np.testing.assert_array_equal(smooth_track(bump, 0.0), bump)


def test_warp_places_points_and_antialiases():
    cv2 = pytest.importorskip("cv2")
    image = np.zeros((40, 50, 3), np.uint8)
    image[10, 30] = 255
    matrix = similarity(1.0, 90.0, 39.0, 0.0)  # (x, y) -> (39 - y, x)
    out = warp(image, matrix, (50, 40))
    assert np.unravel_index(out[..., 0].argmax(), out.shape[:2]) == (30, 29)
    back = warp(out, inverse(matrix), (40, 50))
    assert np.unravel_index(back[..., 0].argmax(), back.shape[:2]) == (10, 30)
    noise = np.random.default_rng(4).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    quarter = similarity(0.25, 0.0, 0.25 * 0.5 - 0.5, 0.25 * 0.5 - 0.5)
    expected = cv2.resize(noise, (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(warp(noise, quarter, 64).astype(int) - expected).max() <= 1


def test_fill_gaps_and_runs():
    found = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0], bool)
    usable, bridged = fill_gaps(found, max_gap=2)
    assert usable.astype(int).tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0]
    assert np.flatnonzero(bridged).tolist() == [3, 4]
    assert runs(usable) == [(1, 6), (10, 12)]
    landmarks = np.full((13, 478, 2), np.nan)
    landmarks[found] = np.arange(13)[found][:, None, None] * [1.0, -2.0]
    filled = interpolate_missing(landmarks, bridged)
    np.testing.assert_allclose(filled[3, 100], [3.0, -6.0])
    np.testing.assert_allclose(filled[4, 0], [4.0, -8.0])
    assert np.isnan(filled[7]).all()


def test_plan_clips():
    usable = np.ones(40, bool)
    usable[20:23] = False
    settings = make_settings(64, 8, None, 0.2, 0.0, False)
    assert plan_clips(usable, None, "W", settings) == [
        ("W", 0, 8),
        ("W", 8, 16),
        ("W", 16, 20),
        ("W", 23, 31),
        ("W", 31, 39),
    ]
    segments = [Segment("A", 10, 24), Segment("B", 20, 23), Segment("C", 30)]
    assert plan_clips(usable, segments, "W", settings) == [("A", 10, 20), ("C", 30, 40)]
    whole = make_settings(64, None, 1, 0.2, 0.0, False)
    assert plan_clips(usable, None, "W", whole) == [("W", 0, 20), ("W", 23, 40)]


def test_safe_word():
    assert safe_word("my clip (2).mp4") == "my-clip-2-mp4"
    assert safe_word("single_face") == "single_face"
    with pytest.raises(ValueError):
        safe_word("???")
