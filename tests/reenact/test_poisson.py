import numpy as np
import pytest

from factorflow.reenact.poisson import poisson_blend, seamless_clone


def _texture(seed: int, size: int = 24) -> np.ndarray:
    """A smooth uint8 [size,size,3] texture with structure at a few pixels' scale."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 200, (size // 4 + 1, size // 4 + 1, 3))
    y = np.linspace(0, size // 4, size)
    y0 = np.floor(y).astype(int).clip(max=size // 4 - 1)
    fy = (y - y0)[:, None, None]
    rows = coarse[y0] * (1 - fy) + coarse[y0 + 1] * fy
    fx = (y - y0)[None, :, None]
    out = rows[:, y0] * (1 - fx) + rows[:, y0 + 1] * fx
    return np.rint(out).astype(np.uint8)


def _box(size: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_outside_pixels_including_border_rows_stay_the_target():
    target, source = _texture(0), _texture(1)
    mask = _box(24, 1, 23, 1, 23)  # one pixel from every border: the border ring is all outside
    out = poisson_blend(source, target, mask)
    assert np.array_equal(out[~mask], target[~mask])
    assert np.array_equal(out[0], target[0]) and np.array_equal(out[-1], target[-1])
    assert np.array_equal(out[:, 0], target[:, 0]) and np.array_equal(out[:, -1], target[:, -1])
    assert not np.array_equal(out[mask], target[mask])


def test_mask_on_the_image_border_keeps_every_other_pixel():
    target, source = _texture(2), _texture(3)
    mask = _box(24, 0, 6, 5, 12)  # touches the top row
    out = poisson_blend(source, target, mask)
    assert np.array_equal(out[~mask], target[~mask])
    assert np.array_equal(out[0, :5], target[0, :5]) and np.array_equal(out[0, 12:], target[0, 12:])


def test_source_with_the_targets_gradients_gives_the_target():
    target = _texture(4)
    source = (target.astype(int) + 37).clip(0, 255).astype(np.uint8)
    assert (target.astype(int) + 37 <= 255).all()
    mask = _box(24, 5, 18, 4, 20)
    assert np.array_equal(poisson_blend(source, target, mask), target)


def test_offset_moves_the_source_onto_the_target():
    target = _texture(5)
    dy, dx = 3, -2
    # source pixel (y, x) = target pixel (y+dy, x+dx) + 20: blended at that offset, it is the target
    source = (np.roll(target, (-dy, -dx), (0, 1)).astype(int) + 20).astype(np.uint8)
    mask = _box(24, 6, 16, 8, 18)
    assert np.array_equal(poisson_blend(source, target, mask, offset=(dy, dx)), target)
    assert not np.array_equal(poisson_blend(source, target, mask, offset=(dy + 1, dx)), target)


def test_flat_source_gives_the_harmonic_interpolation_of_the_boundary():
    # A linear function is discrete-harmonic: with zero guidance the solution inside is the plane.
    y, x = np.mgrid[0:20, 0:20].astype(np.float64)
    target = np.stack([2.0 * y + 3.0 * x + 1.0, -y + 0.5 * x, 0.25 * y - 4.0 * x], -1)
    source = np.full_like(target, 123.0)
    mask = _box(20, 4, 15, 3, 17)
    out = poisson_blend(source, target, mask)
    np.testing.assert_allclose(out, target, atol=1e-9)
    assert out.dtype == np.float64


def test_mixed_gradients_keep_the_target_under_a_flat_source():
    target = _texture(6)
    source = np.full_like(target, 90)
    mask = _box(24, 5, 18, 4, 20)
    assert np.array_equal(poisson_blend(source, target, mask, mixed=True), target)
    assert not np.array_equal(poisson_blend(source, target, mask, mixed=False), target)


def test_each_frame_is_solved_on_its_own():
    a, b, target = _texture(7), _texture(8), _texture(9)
    mask = _box(24, 5, 18, 4, 20)
    alone = poisson_blend(b, target, mask)
    poisson_blend(a, target, mask)
    assert np.array_equal(poisson_blend(b, target, mask), alone)


def test_bad_inputs_are_named():
    t = _texture(10)
    with pytest.raises(ValueError, match="whole target"):
        poisson_blend(t, t, np.ones((24, 24), bool))
    with pytest.raises(ValueError, match="mask has shape"):
        poisson_blend(t, t, np.ones((5, 5), bool))
    assert np.array_equal(poisson_blend(t, _texture(11), np.zeros((24, 24), bool)), _texture(11))


def test_seamless_clone_agrees_with_the_solver():
    pytest.importorskip("cv2")
    target = _texture(12)
    dy, dx = 3, -2
    source = (np.roll(target, (-dy, -dx), (0, 1)).astype(int) + 20).astype(np.uint8)
    mask = _box(24, 6, 16, 8, 18)
    out = seamless_clone(source, target, mask, offset=(dy, dx))
    moved = np.roll(mask, (dy, dx), (0, 1))
    assert np.array_equal(out[~moved], target[~moved])
    assert np.abs(out.astype(int) - target).max() <= 2  # OpenCV discretises slightly differently
    shifted = seamless_clone(source, target, mask, offset=(dy + 1, dx))
    assert np.abs(shifted.astype(int) - target).max() > 5
    # a mask on the source's border is outside what OpenCV handles: the solver answers exactly
    edge = _box(24, 0, 6, 5, 12)
    assert np.array_equal(seamless_clone(source, target, edge), poisson_blend(source, target, edge))
