"""The generator's factors: who (Identity), how the head sits (Pose), the light (Lighting) and the
mouth state per frame (MOUTH_FACTORS).

Positions and lengths are fractions of the frame side (0..1, y down), so one set of factors renders
at any size. Every sampled value is rounded to 4 decimals at the source: the JSON in meta.json then
holds exactly the numbers that were rendered, and a re-render from it is bit-identical.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "HAIR_STYLES",
    "MOUTH_FACTORS",
    "MOUTH_RANGES",
    "MOUTH_TO_IOD",
    "Identity",
    "Lighting",
    "Pose",
    "sample_identity",
    "sample_lighting",
    "sample_pose",
]

MOUTH_FACTORS = ("opening", "width", "rounding", "teeth", "smile")
"""Per-frame mouth state, relative to the speaker's own neutral mouth:
opening: inner-lip gap / mouth width (0 closed, ~0.35 in speech, 0.8 wide open);
width: relative stretch of the mouth width (-0.3..0.3, 0 = neutral);
rounding: pucker (0..1; narrows the mouth, thickens the lips, rounds the opening);
teeth: visible fraction of the upper-teeth band inside the opening (0..1);
smile: corner lift (0..1)."""

MOUTH_RANGES = np.array([[0.0, 0.8], [-0.3, 0.3], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
"""[5, 2] valid (low, high) of each mouth factor; the renderer clips to these."""

MOUTH_TO_IOD = (0.64, 1.09)
"""Rendered mouth width / inter-ocular distance is kept in this measured human range."""

HAIR_STYLES = ("bald", "buzz", "short", "fringe", "bob", "long", "afro")

_SKIN_TONES = np.array(
    [
        [255, 226, 204],
        [244, 200, 172],
        [228, 178, 144],
        [205, 145, 108],
        [170, 112, 78],
        [132, 86, 58],
        [96, 62, 44],
    ],
    dtype=np.float64,
)
_HAIR_COLOURS = np.array(
    [
        [24, 20, 20],
        [58, 40, 30],
        [96, 64, 40],
        [150, 110, 70],
        [214, 180, 120],
        [160, 70, 40],
        [150, 150, 150],
        [228, 224, 214],
    ],
    dtype=np.float64,
)
_IRIS_COLOURS = np.array(
    [[70, 45, 30], [110, 70, 40], [120, 110, 60], [70, 120, 80], [70, 110, 170], [110, 130, 140]],
    dtype=np.float64,
)


def _rgb(colour: np.ndarray) -> tuple[int, int, int]:
    c = np.clip(np.rint(colour), 0, 255).astype(int)
    return (int(c[0]), int(c[1]), int(c[2]))


def _r4(x: float) -> float:
    return round(float(x), 4)


class _Factors:
    """JSON round trip of the factor dataclasses: lists back to tuples, unknown keys refused."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        missing = sorted(set(names) - set(d))
        if unknown or missing:
            raise ValueError(
                f"{cls.__name__} factors: unknown keys {unknown}, missing keys {missing}; "
                f"expected exactly {names}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclass(frozen=True)
class Identity(_Factors):
    """Everything about a speaker that stays fixed: face, features, hair, clothes, background.

    Lengths are fractions of the frame side; `*_ratio`/`*_rel` fields are relative to the named
    reference; angles are degrees; colours are RGB ints.
    """

    face_cy: float  # face centre height
    face_w: float  # face half-width
    face_top: float  # centre -> crown
    face_bottom: float  # centre -> chin
    jaw_taper: float  # 0 round jaw .. 0.35 pointed chin
    skin: tuple[int, int, int]
    eye_y_rel: float  # eye line below the face centre, as a fraction of face_top
    iod_ratio: float  # inter-ocular distance / (2 face_w)
    eye_w_ratio: float  # eye half-width / inter-ocular distance
    eye_open: float  # eye half-height / eye half-width
    eye_tilt: float
    iris: tuple[int, int, int]
    brow_height: float  # brow above the eye centre, in eye half-widths
    brow_thickness: float  # in eye half-widths
    brow_angle: float  # positive raises the outer ends
    brow_colour: tuple[int, int, int]
    nose_length: float  # fraction of the eye-line -> mouth distance
    nose_width: float  # nose half-width / inter-ocular distance
    mouth_y_rel: float  # mouth position between eye line (0) and chin (1)
    mouth_ratio: float  # neutral mouth width / inter-ocular distance
    upper_lip: float  # upper lip thickness / mouth width
    lower_lip: float  # lower lip thickness / mouth width
    lip_colour: tuple[int, int, int]
    hair_style: str
    hair_colour: tuple[int, int, int]
    hairline: float  # 0 at the crown .. 1 at the eye line
    ear_size: float
    background_top: tuple[int, int, int]
    background_bottom: tuple[int, int, int]
    clothes: tuple[int, int, int]
    glasses: bool

    def __post_init__(self) -> None:
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"hair_style {self.hair_style!r}: expected one of {HAIR_STYLES}")


@dataclass(frozen=True)
class Pose(_Factors):
    """Per-clip head pose: translation (fractions of the frame), in-plane rotation (degrees,
    positive = clockwise on screen) and scale, about the frame centre."""

    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class Lighting(_Factors):
    """Per-clip light: overall gain, per-channel tint, and a linear shading ramp of
    `shade_strength` (relative gain at the frame edge) towards `shade_angle` (degrees)."""

    gain: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    shade_angle: float = 0.0
    shade_strength: float = 0.0


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one speaker. Factors are drawn independently except where anatomy ties them
    (brows follow hair colour, lips follow skin)."""
    u = rng.uniform
    face_w = u(0.225, 0.265)
    skin = _lerp_palette(_SKIN_TONES, u(0, 1)) * u(0.96, 1.04, size=3)
    hair_idx = int(rng.integers(len(_HAIR_COLOURS)))
    hair = _HAIR_COLOURS[hair_idx] * u(0.85, 1.15) * u(0.95, 1.05, size=3)
    style = HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))]
    if style == "bald" or hair_idx >= 6:
        brow = _HAIR_COLOURS[int(rng.integers(0, 4))] * u(0.9, 1.1, size=3)
    else:
        brow = hair * 0.75
    lip_base = np.array([190.0, 80.0, 90.0]) if u() < 0.6 else np.array([170.0, 90.0, 80.0])
    redness = u(0.3, 0.5)
    lip = (skin * (1 - redness) + lip_base * redness) * u(0.72, 0.85)
    bg_hue = rng.uniform(0, 255, size=3)
    bg_top = bg_hue * u(0.5, 1.0)
    bg_bottom = bg_top * u(0.55, 0.9) + u(0, 40)
    return Identity(
        face_cy=_r4(u(0.43, 0.46)),
        face_w=_r4(face_w),
        face_top=_r4(face_w * u(1.2, 1.38)),
        face_bottom=_r4(face_w * u(1.3, 1.5)),
        jaw_taper=_r4(u(0.0, 0.35)),
        skin=_rgb(skin),
        eye_y_rel=_r4(u(-0.05, 0.1)),
        iod_ratio=_r4(u(0.4, 0.47)),
        eye_w_ratio=_r4(u(0.2, 0.27)),
        eye_open=_r4(u(0.38, 0.62)),
        eye_tilt=_r4(u(-8.0, 8.0)),
        iris=_rgb(_IRIS_COLOURS[int(rng.integers(len(_IRIS_COLOURS)))] * u(0.85, 1.15, size=3)),
        brow_height=_r4(u(1.0, 1.6)),
        brow_thickness=_r4(u(0.22, 0.55)),
        brow_angle=_r4(u(-12.0, 14.0)),
        brow_colour=_rgb(brow),
        nose_length=_r4(u(0.5, 0.68)),
        nose_width=_r4(u(0.16, 0.26)),
        mouth_y_rel=_r4(u(0.46, 0.54)),
        mouth_ratio=_r4(u(0.74, 0.95)),
        upper_lip=_r4(u(0.1, 0.17)),
        lower_lip=_r4(u(0.14, 0.24)),
        lip_colour=_rgb(lip),
        hair_style=style,
        hair_colour=_rgb(hair),
        hairline=_r4(u(0.25, 0.5)),
        ear_size=_r4(u(0.8, 1.15)),
        background_top=_rgb(bg_top),
        background_bottom=_rgb(bg_bottom),
        clothes=_rgb(rng.uniform(20, 235, size=3)),
        glasses=bool(u() < 0.2),
    )


def sample_pose(rng: np.random.Generator) -> Pose:
    """Small per-clip head jitter: +-3% translation, +-6 degrees, +-6% scale."""
    u = rng.uniform
    return Pose(
        dx=_r4(u(-0.03, 0.03)),
        dy=_r4(u(-0.03, 0.03)),
        angle=_r4(u(-6.0, 6.0)),
        scale=_r4(u(0.94, 1.06)),
    )


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """Per-clip light change: +-10% gain, +-3% tint, a shading ramp up to 15% at the edge."""
    u = rng.uniform
    return Lighting(
        gain=_r4(u(0.9, 1.1)),
        tint=tuple(_r4(x) for x in u(0.97, 1.03, size=3)),
        shade_angle=_r4(u(0.0, 360.0)),
        shade_strength=_r4(u(0.0, 0.15)),
    )


def _lerp_palette(palette: np.ndarray, t: float) -> np.ndarray:
    x = t * (len(palette) - 1)
    i = min(int(x), len(palette) - 2)
    return palette[i] * (1 - (x - i)) + palette[i + 1] * (x - i)
