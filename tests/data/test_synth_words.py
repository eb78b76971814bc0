"""Words as mouth trajectories: valid, smooth, speech-like, distinct per word, never repeated."""

import numpy as np
import pytest

from factorflow.data.synth import VOCABULARY, SpeakingStyle, plan, visemes, word_trajectory
from factorflow.data.synth.factors import MOUTH_RANGES

FPS = 25


@pytest.fixture(scope="module")
def meta():
    return plan(size=32, frames=16, speakers=12, words=10, clips_per_pair=3, seed=0)


def by_word(meta) -> dict[str, np.ndarray]:
    out = {}
    for c in meta.all_clips:
        out.setdefault(c.word, []).append(c.mouth)
    return {w: np.stack(m) for w, m in out.items()}


def test_trajectories_stay_in_range_and_start_and_end_at_rest(meta):
    for c in meta.all_clips:
        assert c.mouth.shape == (16, 5)
        assert np.all(c.mouth >= MOUTH_RANGES[:, 0]) and np.all(c.mouth <= MOUTH_RANGES[:, 1])
        # Neutral closed mouth with small noise before the onset and on the last frame.
        assert np.abs(c.mouth[[0, -1]]).max() < 0.05
        # Speech opens the mouth, within the measured range (typical <= 0.35, wide <= 0.8).
        assert 0.1 < c.mouth[:, 0].max() <= 0.8


def test_mouth_moves_smoothly_like_speech(meta):
    # At 25 fps a lip release can open the mouth by ~0.4 in one frame, but not more, and most
    # frame-to-frame changes are far smaller.
    steps = np.array([np.abs(np.diff(c.mouth[:, 0])).max() for c in meta.all_clips])
    assert steps.max() < 0.45 and np.median(steps) < 0.3
    # Openings mostly in the range of normal speech.
    openings = np.concatenate([c.mouth[:, 0] for c in meta.all_clips])
    assert np.quantile(openings, 0.9) < 0.5


def test_open_close_events_last_a_fraction_of_a_second():
    style = SpeakingStyle(speed=1.0, amplitude=1.0)
    rng = np.random.default_rng(0)
    lengths = []
    for word in VOCABULARY:
        opening = word_trajectory(word, style, rng, 40, FPS)[:, 0]
        # One event: the mouth leaves rest (opening > 0.05) and comes back to it.
        above = np.concatenate([[0], (opening > 0.05).astype(int), [0]])
        starts, ends = np.nonzero(np.diff(above) == 1)[0], np.nonzero(np.diff(above) == -1)[0]
        lengths += list((ends - starts) / FPS)
    assert min(lengths) >= 0.08 and max(lengths) <= 0.8
    assert 0.2 <= np.median(lengths) <= 0.6


def test_words_differ_by_their_mean_trajectory(meta):
    words = by_word(meta)
    means = {w: m.mean(axis=0) for w, m in words.items()}
    spread = np.mean([np.abs(m - means[w]).mean() for w, m in words.items()])
    names = sorted(means)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            gap = np.abs(means[a] - means[b]).mean()
            assert gap > 0.75 * spread, f"{a} and {b} have almost the same mean trajectory"


def test_words_are_recognisable_by_nearest_mean(meta):
    """Leave-one-out nearest mean trajectory: far above chance (10%)."""
    words = by_word(meta)
    names = sorted(words)
    hits = total = 0
    for w, clips in words.items():
        for k in range(len(clips)):
            means = {
                v: (np.delete(c, k, axis=0) if v == w else c).mean(axis=0) for v, c in words.items()
            }
            guess = min(names, key=lambda v: np.square(clips[k] - means[v]).sum())
            hits += guess == w
            total += 1
    assert hits / total > 0.75


def test_no_two_utterances_are_identical(meta):
    flat = {c.mouth.tobytes() for c in meta.all_clips}
    assert len(flat) == len(meta.all_clips)


def test_speaker_style_changes_speed_and_amplitude():
    slow = SpeakingStyle(speed=0.8, amplitude=0.75)
    fast = SpeakingStyle(speed=1.25, amplitude=1.2)
    runs = {}
    for name, style in (("slow", slow), ("fast", fast)):
        rng = np.random.default_rng(1)
        runs[name] = np.stack([word_trajectory("ABOUT", style, rng, 40, FPS) for _ in range(20)])
    assert runs["fast"][:, :, 0].max(1).mean() > 1.2 * runs["slow"][:, :, 0].max(1).mean()
    active = {k: (v[:, :, 0] > 0.05).sum(1).mean() for k, v in runs.items()}
    assert active["fast"] < active["slow"]


def test_long_words_fit_short_clips():
    mouth = word_trajectory("FAMILY", SpeakingStyle(0.8, 1.0), np.random.default_rng(0), 8, FPS)
    assert mouth.shape == (8, 5)
    assert mouth[:, 0].max() > 0.1 and abs(mouth[-1, 0]) < 0.05


def test_visemes_and_bad_words():
    targets, durations = visemes("PEOPLE")
    assert targets.shape == (6, 5) and durations.shape == (6,)
    assert targets[0, 0] == 0.0  # P closes the lips
    assert targets[2, 2] > 0.5  # O rounds them
    for bad in ["", "about", "AB1", "ÄBC"]:
        with pytest.raises(ValueError, match="uppercase ASCII"):
            visemes(bad)
