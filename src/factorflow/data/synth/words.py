"""Words as mouth trajectories.

A word is its spelling read as a sequence of visemes (one target mouth state per letter, from
`VISEMES`). A speaker says it with a speed, an onset and an amplitude drawn around the speaker's
style for every clip, plus a small jitter on every viseme target; the mouth moves between targets
with smooth (smoothstep) transitions. Frames before the onset and after the end hold the neutral
closed mouth with small noise. So a word is recognisable from its trajectory, and never the same
array twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factorflow.data.synth.factors import MOUTH_RANGES

__all__ = [
    "NEUTRAL",
    "VISEMES",
    "VOCABULARY",
    "SpeakingStyle",
    "sample_style",
    "visemes",
    "word_trajectory",
]

VOCABULARY = (
    "ABOUT",
    "PEOPLE",
    "WORLD",
    "FAMILY",
    "THINK",
    "MONEY",
    "CHANGE",
    "BELOW",
    "WATER",
    "YOUNG",
    "SPEND",
    "NORTH",
    "MIGHT",
    "POLICE",
    "BEFORE",
    "ALWAYS",
    "MOMENT",
    "TODAY",
    "FUTURE",
    "GROUP",
)
"""Built-in words (LRW-like); `generate(words=N)` uses the first N."""

# Letter -> target (opening, width, rounding, teeth, smile) and duration in seconds.
_OPEN_VOWEL = ((0.42, 0.05, 0.0, 0.5, 0.15), 0.09)
_FRONT_VOWEL = ((0.24, 0.15, 0.0, 0.8, 0.45), 0.09)
_CLOSE_FRONT = ((0.17, 0.2, 0.0, 0.9, 0.55), 0.08)
_ROUND_OPEN = ((0.36, -0.18, 0.75, 0.15, 0.0), 0.09)
_ROUND_CLOSE = ((0.15, -0.25, 1.0, 0.0, 0.0), 0.08)
_LIPS_SHUT = ((0.0, -0.05, 0.1, 0.0, 0.0), 0.07)
_LIP_TEETH = ((0.06, 0.05, 0.0, 1.0, 0.1), 0.06)
_TONGUE_TIP = ((0.1, 0.1, 0.0, 0.85, 0.15), 0.06)
_BACK = ((0.2, 0.02, 0.1, 0.4, 0.05), 0.06)
_ROUND_GLIDE = ((0.08, -0.3, 1.0, 0.0, 0.0), 0.06)
_R = ((0.1, -0.15, 0.55, 0.3, 0.0), 0.06)
_POSTALVEOLAR = ((0.12, -0.12, 0.5, 0.7, 0.0), 0.07)

VISEMES: dict[str, tuple[tuple[float, ...], float]] = {
    "A": _OPEN_VOWEL,
    "E": _FRONT_VOWEL,
    "I": _CLOSE_FRONT,
    "Y": _CLOSE_FRONT,
    "O": _ROUND_OPEN,
    "U": _ROUND_CLOSE,
    "W": _ROUND_GLIDE,
    "B": _LIPS_SHUT,
    "M": _LIPS_SHUT,
    "P": _LIPS_SHUT,
    "F": _LIP_TEETH,
    "V": _LIP_TEETH,
    "R": _R,
    "J": _POSTALVEOLAR,
    **{c: _TONGUE_TIP for c in "TDNLSZ"},
    **{c: _BACK for c in "CKGQXH"},
}
"""Every uppercase ASCII letter -> (mouth target [5], duration in seconds at speed 1)."""

NEUTRAL = np.zeros(5)
_EDGE = 0.06  # seconds from rest to the first viseme and from the last back to rest


@dataclass(frozen=True)
class SpeakingStyle:
    """A speaker's manner: speed (visemes per unit time, 1 = nominal) and amplitude (scales how far
    the mouth leaves the neutral state)."""

    speed: float
    amplitude: float

    def to_dict(self) -> dict[str, float]:
        return {"speed": self.speed, "amplitude": self.amplitude}


def sample_style(rng: np.random.Generator) -> SpeakingStyle:
    return SpeakingStyle(
        speed=round(float(rng.uniform(0.8, 1.25)), 4),
        amplitude=round(float(rng.uniform(0.75, 1.2)), 4),
    )


def visemes(word: str) -> tuple[np.ndarray, np.ndarray]:
    """word -> (targets [L,5], durations [L] in seconds at speed 1)."""
    if not word or not word.isascii() or not word.isalpha() or not word.isupper():
        raise ValueError(f"word {word!r}: expected uppercase ASCII letters A-Z")
    targets = np.array([VISEMES[c][0] for c in word], dtype=np.float64)
    durations = np.array([VISEMES[c][1] for c in word], dtype=np.float64)
    return targets, durations


def word_trajectory(
    word: str, style: SpeakingStyle, rng: np.random.Generator, frames: int, fps: float = 25.0
) -> np.ndarray:
    """One utterance of `word` in a clip of `frames` frames -> mouth [frames, 5], rounded to 4
    decimals. Per clip: speed x U(0.92, 1.08), amplitude x U(0.9, 1.1), onset U(0.04, 0.16) s (less
    when the clip is short), viseme targets jittered by N(0, 0.03). A word longer than the clip is
    sped up so that the mouth is back at rest on the last frame."""
    if frames < 1:
        raise ValueError(f"frames={frames}: expected at least 1")
    targets, durations = visemes(word)
    speed = style.speed * rng.uniform(0.92, 1.08)
    amplitude = style.amplitude * rng.uniform(0.9, 1.1)
    last = (frames - 1) / fps
    onset = rng.uniform(0.04, 0.16) * min(1.0, last / 0.6)
    durations = durations / speed
    room = last - onset - 2 * _EDGE
    if durations.sum() > room:
        durations = durations * max(room, 0.5 * last, 1e-3) / durations.sum()
    targets = NEUTRAL + amplitude * (targets - NEUTRAL) + rng.normal(0.0, 0.03, targets.shape)
    centres = onset + _EDGE + np.cumsum(durations) - durations / 2
    key_t = np.concatenate([[onset], centres, [centres[-1] + durations[-1] / 2 + _EDGE]])
    key_v = np.concatenate([NEUTRAL[None], targets, NEUTRAL[None]])
    t = np.arange(frames) / fps
    out = _smooth_interp(t, key_t, key_v)
    rest = (t <= key_t[0]) | (t >= key_t[-1])
    noise = rng.normal(0.0, 0.01, (frames, 5)) * np.array([1.0, 1.0, 1.0, 0.0, 1.0])
    noise[:, [0, 2, 4]] = np.abs(noise[:, [0, 2, 4]])
    out = out + np.where(rest[:, None], noise, 0.0)
    return np.round(np.clip(out, MOUTH_RANGES[:, 0], MOUTH_RANGES[:, 1]), 4)


def _smooth_interp(t: np.ndarray, key_t: np.ndarray, key_v: np.ndarray) -> np.ndarray:
    """Smoothstep between consecutive keyframes: zero velocity at each target, like a mouth
    settling on a viseme. t [N], key_t [K] increasing, key_v [K,D] -> [N,D]."""
    i = np.clip(np.searchsorted(key_t, t, side="right") - 1, 0, len(key_t) - 2)
    u = np.clip((t - key_t[i]) / (key_t[i + 1] - key_t[i]), 0.0, 1.0)
    s = (u * u * (3 - 2 * u))[:, None]
    return key_v[i] * (1 - s) + key_v[i + 1] * s
