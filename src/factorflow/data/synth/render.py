"""Rendering a face from its factors, with numpy and PIL only.

Every shape is a polygon in frame units (fractions of the side, y down), moved by the clip's pose
and rasterised at SUPERSAMPLE times the output size, then box-downsampled: anti-aliased edges with
no resampling of pixels, so a pose never blurs the face. Within a clip only the mouth moves: the
rest of the face is drawn once per (identity, pose, size) and each frame draws the mouth on a copy,
so `render_frame` and `render_clip` go through the same code and give the same bytes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from factorflow.data.synth.factors import MOUTH_RANGES, MOUTH_TO_IOD, Identity, Lighting, Pose

__all__ = ["SUPERSAMPLE", "FaceRenderer", "check_size", "render_clip", "render_frame"]

SUPERSAMPLE = 4
_MOUTH_POINTS = 25  # samples per lip curve, corner to corner
_INTERIOR = np.array([52.0, 18.0, 24.0])
_TONGUE = np.array([150.0, 62.0, 68.0])
_TEETH = np.array([236.0, 231.0, 216.0])
_SCLERA = np.array([236.0, 230.0, 222.0])


def check_size(size: int) -> None:
    if not isinstance(size, int | np.integer) or size < 16 or size % 16:
        raise ValueError(f"frame size {size!r}: expected a multiple of 16, at least 16")


def _col(rgb, scale: float = 1.0) -> tuple[int, int, int]:
    c = np.clip(np.rint(np.asarray(rgb, dtype=np.float64) * scale), 0, 255).astype(int)
    return (int(c[0]), int(c[1]), int(c[2]))


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return _col(np.asarray(a, dtype=np.float64) * (1 - t) + np.asarray(b, dtype=np.float64) * t)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _rotate(pts: np.ndarray, centre: tuple[float, float], degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    d = pts - np.asarray(centre)
    return np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], axis=1) + centre


class _MouthShape(NamedTuple):
    """Lip contours [_MOUTH_POINTS, 2] in frame units (before pose), corner to corner."""

    upper_out: np.ndarray
    upper_in: np.ndarray
    lower_in: np.ndarray
    lower_out: np.ndarray
    teeth: np.ndarray  # lower edge of the upper-teeth band
    tongue: np.ndarray  # upper edge of the tongue
    opening: float
    halfwidth: float


class _Geometry:
    """Landmark positions (frame units, before pose) derived from an Identity."""

    def __init__(self, idt: Identity) -> None:
        self.cx, self.cy = 0.5, idt.face_cy
        self.fw, self.ft, self.fb = idt.face_w, idt.face_top, idt.face_bottom
        self.jaw_taper = idt.jaw_taper
        self.eye_y = self.cy + idt.eye_y_rel * self.ft
        self.iod = idt.iod_ratio * 2 * self.fw
        self.eye_w = idt.eye_w_ratio * self.iod
        self.eye_h = idt.eye_open * self.eye_w
        self.chin_y = self.cy + self.fb
        self.crown_y = self.cy - self.ft
        self.mouth_y = self.eye_y + idt.mouth_y_rel * (self.chin_y - self.eye_y)
        self.nose_y = self.eye_y + idt.nose_length * (self.mouth_y - self.eye_y)
        self.nose_w = idt.nose_width * self.iod
        self.mouth_hw = idt.mouth_ratio * self.iod / 2
        self.brow_y = self.eye_y - idt.brow_height * self.eye_w

    def face_outline(self, n: int = 64) -> np.ndarray:
        """[n, 2] closed contour: half ellipse above the centre, a tapered jaw below."""
        t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        x, y = np.cos(t), np.sin(t)
        below = y > 0
        taper = np.where(below, 1 - self.jaw_taper * y**2, 1.0)
        return np.stack(
            [self.cx + self.fw * x * taper, self.cy + np.where(below, self.fb, self.ft) * y], axis=1
        )


class FaceRenderer:
    """Renders frames of one identity at one pose, lighting and size; only the mouth varies.

    `frame(mouth)` -> (rgb uint8 [H,W,3], mask uint8 [H,W] in {0,1}).
    """

    def __init__(self, identity: Identity, pose: Pose, lighting: Lighting, size: int) -> None:
        check_size(size)
        self.identity, self.pose, self.lighting, self.size = identity, pose, lighting, int(size)
        self._px = self.size * SUPERSAMPLE
        self._g = _Geometry(identity)
        self._static = self._draw_static()
        self._light = self._light_map()

    def _xy(self, pts: np.ndarray) -> list[float]:
        """Frame units [N,2] -> posed canvas pixel coordinates, flat list for ImageDraw."""
        p = self.pose
        posed = _rotate(pts, (0.5, 0.5), p.angle)
        posed = (posed - 0.5) * p.scale + 0.5 + np.array([p.dx, p.dy])
        return (posed * self._px).ravel().tolist()

    def _poly(self, draw: ImageDraw.ImageDraw, pts: np.ndarray, fill) -> None:
        draw.polygon(self._xy(pts), fill=fill)

    def _line(self, draw: ImageDraw.ImageDraw, pts: np.ndarray, fill, width: float) -> None:
        w = max(1, round(width * self.pose.scale * self._px))
        draw.line(self._xy(pts), fill=fill, width=w, joint="curve")

    def _draw_static(self) -> Image.Image:
        idt = self.identity
        rows = np.linspace(0.0, 1.0, self._px)[:, None, None]
        top = np.asarray(idt.background_top, dtype=np.float64)
        bottom = np.asarray(idt.background_bottom, dtype=np.float64)
        bg = np.broadcast_to(top * (1 - rows) + bottom * rows, (self._px, self._px, 3))
        img = Image.fromarray(np.rint(bg).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(img)
        self._draw_hair_back(draw)
        self._draw_body(draw)
        if idt.hair_style not in ("long", "bob"):
            self._draw_ears(draw)
        self._draw_face(img)
        self._draw_eyes(img)
        draw = ImageDraw.Draw(img)
        self._draw_brows(draw)
        self._draw_nose(draw)
        self._draw_hair_front(draw)
        if idt.glasses:
            self._draw_glasses(draw)
        return img

    def _draw_hair_back(self, draw: ImageDraw.ImageDraw) -> None:
        idt, g = self.identity, self._g
        hair = _col(idt.hair_colour, 1.0 if idt.hair_style == "afro" else 0.8)
        if idt.hair_style == "afro":
            self._poly(draw, _ellipse(g.cx, g.cy - 0.3 * g.ft, 1.55 * g.fw, 1.3 * g.ft), hair)
        elif idt.hair_style in ("long", "bob"):
            bottom = 1.08 if idt.hair_style == "long" else g.chin_y + 0.1 * g.fb
            spread = 1.45 if idt.hair_style == "long" else 1.25
            t = np.linspace(np.pi, 2 * np.pi, 24)
            arc = np.stack([g.cx + 1.14 * g.fw * np.cos(t), g.cy + 1.12 * g.ft * np.sin(t)], 1)
            right = np.array([[g.cx + 1.16 * g.fw, g.cy], [g.cx + spread * g.fw, bottom]])
            left = np.array([[g.cx - spread * g.fw, bottom], [g.cx - 1.16 * g.fw, g.cy]])
            self._poly(draw, np.concatenate([arc, right, left]), hair)

    def _draw_body(self, draw: ImageDraw.ImageDraw) -> None:
        idt, g = self.identity, self._g
        neck = np.array(
            [
                [g.cx - 0.52 * g.fw, g.cy],
                [g.cx + 0.52 * g.fw, g.cy],
                [g.cx + 0.58 * g.fw, g.chin_y + 0.2],
                [g.cx - 0.58 * g.fw, g.chin_y + 0.2],
            ]
        )
        self._poly(draw, neck, _col(idt.skin, 0.78))
        shoulders_y = g.chin_y + 0.11
        self._poly(draw, _ellipse(g.cx, shoulders_y + 0.3, 2.4 * g.fw, 0.32), _col(idt.clothes))
        self._poly(
            draw, _ellipse(g.cx, shoulders_y - 0.005, 0.55 * g.fw, 0.035, 24), _col(idt.skin, 0.72)
        )

    def _draw_ears(self, draw: ImageDraw.ImageDraw) -> None:
        idt, g = self.identity, self._g
        for s in (-1, 1):
            ex, ey = g.cx + s * 0.97 * g.fw, g.eye_y + 0.2 * g.fw
            rx, ry = 0.16 * g.fw * idt.ear_size, 0.3 * g.fw * idt.ear_size
            self._poly(draw, _ellipse(ex, ey, rx, ry, 24), _col(idt.skin, 0.9))
            self._poly(
                draw,
                _ellipse(ex + s * 0.02 * g.fw, ey, rx * 0.5, ry * 0.6, 16),
                _col(idt.skin, 0.72),
            )

    def _draw_face(self, img: Image.Image) -> None:
        """Skin with soft shading: darker at the rim, blurred towards the lit centre."""
        idt, g = self.identity, self._g
        outline = g.face_outline()
        mask = Image.new("L", img.size, 0)
        ImageDraw.Draw(mask).polygon(self._xy(outline), fill=255)
        centre = np.array([g.cx, g.cy + 0.1 * g.fw])
        lit = Image.new("L", img.size, 0)
        ImageDraw.Draw(lit).polygon(self._xy(centre + (outline - centre) * 0.8), fill=255)
        lit = lit.filter(ImageFilter.GaussianBlur(0.12 * g.fw * self._px))
        skin = Image.new("RGB", img.size, _col(idt.skin))
        shade = Image.new("RGB", img.size, _col(idt.skin, 0.8))
        face = Image.composite(skin, shade, lit)
        blush = Image.new("L", img.size, 0)
        for s in (-1, 1):
            cheek = _ellipse(g.cx + s * 0.5 * g.fw, g.mouth_y - 0.3 * g.fw, 0.2 * g.fw, 0.14 * g.fw)
            self._poly(ImageDraw.Draw(blush), cheek, 70)
        blush = blush.filter(ImageFilter.GaussianBlur(0.08 * g.fw * self._px))
        face = Image.composite(
            Image.new("RGB", img.size, _mix(idt.skin, (225, 80, 80), 0.3)), face, blush
        )
        img.paste(face, mask=mask)

    def _eye_outline(self, s: int) -> np.ndarray:
        g, idt = self._g, self.identity
        xh = np.linspace(-1.0, 1.0, 17)
        upper = np.stack([xh * g.eye_w, -g.eye_h * (1 - xh**2) ** 0.7], 1)
        lower = np.stack([xh[::-1] * g.eye_w, 0.75 * g.eye_h * (1 - xh[::-1] ** 2) ** 0.8], 1)
        centre = (g.cx + s * g.iod / 2, g.eye_y)
        return _rotate(np.concatenate([upper, lower]) + centre, centre, -s * idt.eye_tilt)

    def _draw_eyes(self, img: Image.Image) -> None:
        idt, g = self.identity, self._g
        layer = Image.new("RGB", img.size, _col(_SCLERA))
        mask = Image.new("L", img.size, 0)
        ld, md = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
        r = 0.95 * g.eye_h
        for s in (-1, 1):
            ex, ey = g.cx + s * g.iod / 2, g.eye_y
            self._poly(md, self._eye_outline(s), 255)
            self._poly(ld, _ellipse(ex, ey, r, r, 24), _col(idt.iris))
            self._poly(ld, _ellipse(ex, ey, 0.45 * r, 0.45 * r, 16), (18, 14, 14))
            self._poly(
                ld, _ellipse(ex + 0.3 * r, ey - 0.3 * r, 0.18 * r, 0.18 * r, 12), (250, 250, 250)
            )
        img.paste(layer, mask=mask)
        draw = ImageDraw.Draw(img)
        for s in (-1, 1):
            upper = self._eye_outline(s)[:17]
            self._line(draw, upper, (30, 22, 22), 0.22 * g.eye_h)
            crease = upper + np.array([0.0, -0.45 * g.eye_h])
            self._line(draw, crease[3:-3], _col(idt.skin, 0.78), 0.12 * g.eye_h)

    def _draw_brows(self, draw: ImageDraw.ImageDraw) -> None:
        idt, g = self.identity, self._g
        t = np.linspace(0.0, 1.0, 13)  # inner end -> outer end
        thick = idt.brow_thickness * g.eye_w * (1.0 - 0.55 * t)
        rise = math.tan(math.radians(idt.brow_angle)) * 2.3 * g.eye_w
        arch = 0.35 * g.eye_w * np.sin(np.pi * np.clip(t * 1.25, 0, 1))
        for s in (-1, 1):
            x = g.cx + s * (g.iod / 2 - 1.05 * g.eye_w + t * 2.3 * g.eye_w)
            y = g.brow_y - arch - rise * (t - 0.5)
            upper = np.stack([x, y - thick / 2], 1)
            lower = np.stack([x, y + thick / 2], 1)[::-1]
            self._poly(draw, np.concatenate([upper, lower]), _col(idt.brow_colour))

    def _draw_nose(self, draw: ImageDraw.ImageDraw) -> None:
        idt, g = self.identity, self._g
        w, y = g.nose_w, g.nose_y
        bridge = np.array(
            [
                [g.cx + 0.15 * w, g.eye_y + 0.3 * g.eye_h],
                [g.cx + 0.5 * w, y - 0.5 * w],
                [g.cx + 0.1 * w, y - 0.1 * w],
            ]
        )
        self._poly(draw, bridge, _col(idt.skin, 0.86))
        self._poly(draw, _ellipse(g.cx, y, 0.95 * w, 0.42 * w, 24), _col(idt.skin, 0.9))
        self._poly(draw, _ellipse(g.cx, y - 0.08 * w, 0.45 * w, 0.32 * w, 20), _col(idt.skin, 0.98))
        for s in (-1, 1):
            self._poly(
                draw,
                _ellipse(g.cx + s * 0.42 * w, y + 0.15 * w, 0.22 * w, 0.12 * w, 12),
                _col(idt.skin, 0.45),
            )

    def _draw_hair_front(self, draw: ImageDraw.ImageDraw) -> None:
        idt, g = self.identity, self._g
        style = idt.hair_style
        if style == "bald":
            return
        colour = _mix(idt.hair_colour, idt.skin, 0.55) if style == "buzz" else _col(idt.hair_colour)
        volume = 1.2 if style == "afro" else 1.07
        a, b = volume * g.fw, volume * g.ft
        temple_y = g.brow_y - 0.2 * g.eye_w
        phi0 = math.asin(max(-0.999, (temple_y - g.cy) / b))
        phi = np.linspace(phi0, -np.pi - phi0, 40)
        arc = np.stack([g.cx + a * np.cos(phi), g.cy + b * np.sin(phi)], 1)
        half = a * math.cos(phi0)
        x = np.linspace(-half, half, 41)
        u = np.abs(x) / half
        line_y = g.crown_y + idt.hairline * (g.eye_y - g.crown_y)
        if style == "fringe":
            teeth = 0.12 * g.eye_w * (np.arange(41) % 2)
            y = np.minimum(g.brow_y - 0.35 * g.eye_w + teeth + 0.15 * g.ft * u**4, temple_y)
        else:
            y = line_y + (temple_y - line_y) * u**2.5
        if style in ("long", "bob"):
            # A side part: the hairline dips on one side, hair sweeps over the temples.
            y = y + 0.12 * g.ft * np.clip(1 - (x / half + 0.3) ** 2 * 4, 0, 1)
        self._poly(draw, np.concatenate([arc, np.stack([g.cx + x, y], 1)]), colour)
        if style in ("long", "bob"):
            bottom = g.chin_y + (0.3 if style == "long" else 0.0) * g.fb
            for s in (-1, 1):
                lock = np.array(
                    [
                        [g.cx + s * half, temple_y - 0.05],
                        [g.cx + s * 0.86 * g.fw, temple_y],
                        [g.cx + s * 0.9 * g.fw, g.mouth_y],
                        [g.cx + s * 1.02 * g.fw, bottom],
                        [g.cx + s * 1.25 * g.fw, bottom],
                        [g.cx + s * 1.15 * g.fw, g.cy],
                    ]
                )
                self._poly(draw, lock, colour)
        strand = _col(idt.hair_colour, 0.7)
        for k in (-0.5, -0.2, 0.15, 0.45):
            sx = g.cx + k * g.fw
            self._line(
                draw,
                np.array(
                    [[sx, g.crown_y + 0.08 * g.ft], [sx + 0.12 * k * g.fw, line_y - 0.04 * g.ft]]
                ),
                strand,
                0.012 * g.fw,
            )

    def _draw_glasses(self, draw: ImageDraw.ImageDraw) -> None:
        g = self._g
        frame = (28, 26, 30)
        w, h = 1.45 * g.eye_w, 1.25 * g.eye_w
        for s in (-1, 1):
            ex = g.cx + s * g.iod / 2
            rim = _ellipse(ex, g.eye_y + 0.1 * g.eye_h, w, h, 32)
            self._line(draw, np.concatenate([rim, rim[:1]]), frame, 0.08 * g.eye_w)
        bridge = np.array([[g.cx - g.iod / 2 + w, g.eye_y], [g.cx + g.iod / 2 - w, g.eye_y]])
        self._line(draw, bridge, frame, 0.08 * g.eye_w)

    def _light_map(self) -> np.ndarray:
        """[H, W, 3] float64 multiplier: gain x tint x linear shading ramp."""
        lt = self.lighting
        c = (np.arange(self.size) + 0.5) / self.size - 0.5
        a = math.radians(lt.shade_angle)
        ramp = 1.0 + 2.0 * lt.shade_strength * (c[None, :] * math.cos(a) + c[:, None] * math.sin(a))
        return lt.gain * ramp[:, :, None] * np.asarray(lt.tint, dtype=np.float64)

    def _mouth_shape(self, mouth: np.ndarray) -> _MouthShape:
        g, idt = self._g, self.identity
        m = np.clip(np.asarray(mouth, dtype=np.float64), MOUTH_RANGES[:, 0], MOUTH_RANGES[:, 1])
        opening, width, rounding, teeth, smile = (float(v) for v in m)
        hw = g.mouth_hw * (1 + width) * (1 - 0.22 * rounding) * (1 + 0.08 * smile)
        hw = float(np.clip(hw, MOUTH_TO_IOD[0] * g.iod / 2, MOUTH_TO_IOD[1] * g.iod / 2))
        gap = opening * 2 * hw
        xh = np.linspace(-1.0, 1.0, _MOUTH_POINTS)
        bulge = (1 - xh**2).clip(0)
        # Pucker rounds the opening (exponent towards an ellipse's 0.5).
        inner = bulge ** (0.8 - 0.3 * rounding)
        lift = -smile * 0.3 * hw * xh**2 - 0.02 * smile * g.fw
        # The jaw carries the lower lip: most of the gap opens below the lip line.
        upper_in = -0.28 * gap * inner + lift
        lower_in = 0.72 * gap * inner + lift
        base_w = 2 * g.mouth_hw
        t_up = idt.upper_lip * base_w * (1 + 0.5 * rounding) * (1 - 0.3 * smile)
        t_lo = idt.lower_lip * base_w * (1 + 0.4 * rounding) * (1 - 0.25 * smile)
        cupids_bow = 1 - 0.35 * (1 - rounding) * np.exp(-((xh / 0.16) ** 2))
        upper_out = upper_in - t_up * bulge ** (0.5 - 0.2 * rounding) * cupids_bow
        lower_out = lower_in + t_lo * bulge ** (0.6 - 0.3 * rounding)
        teeth_h = teeth * min(0.45 * gap, 0.14 * 2 * hw)
        teeth_y = np.minimum(upper_in + teeth_h * (1 - (xh / 0.8) ** 4).clip(0) ** 0.5, lower_in)
        tongue_y = np.maximum(lower_in - 0.3 * gap * inner, upper_in)
        x = g.cx + hw * xh
        curves = [upper_out, upper_in, lower_in, lower_out, teeth_y, tongue_y]
        return _MouthShape(
            *(np.stack([x, g.mouth_y + y], 1) for y in curves), opening=opening, halfwidth=hw
        )

    def mouth_to_iod(self, mouth: np.ndarray) -> float:
        """Rendered mouth width / inter-ocular distance for a mouth state [5]."""
        return 2 * self._mouth_shape(mouth).halfwidth / self._g.iod

    def frame(self, mouth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mouth [5] (MOUTH_FACTORS) -> (rgb uint8 [H,W,3], mask uint8 [H,W] in {0,1})."""
        mouth = np.asarray(mouth, dtype=np.float64)
        if mouth.shape != (5,):
            raise ValueError(f"mouth state has shape {mouth.shape}: expected (5,) = MOUTH_FACTORS")
        c = self._mouth_shape(mouth)
        img = self._static.copy()
        draw = ImageDraw.Draw(img)
        if c.opening > 0:
            self._poly(draw, np.concatenate([c.upper_in, c.lower_in[::-1]]), _col(_INTERIOR))
            self._poly(draw, np.concatenate([c.tongue, c.lower_in[::-1]]), _col(_TONGUE))
            self._poly(draw, np.concatenate([c.upper_in, c.teeth[::-1]]), _col(_TEETH))
        lip = self.identity.lip_colour
        self._poly(draw, np.concatenate([c.upper_out, c.upper_in[::-1]]), _col(lip, 0.9))
        self._poly(draw, np.concatenate([c.lower_in, c.lower_out[::-1]]), _col(lip))
        self._line(draw, c.upper_in, _col(lip, 0.5), 0.025 * c.halfwidth)
        rgb = np.asarray(img.reduce(SUPERSAMPLE), dtype=np.float64)
        rgb = np.clip(np.rint(rgb * self._light), 0, 255).astype(np.uint8)
        return rgb, self._mask(c)

    def _mask(self, c: _MouthShape) -> np.ndarray:
        """The lips' outer contour grown by 20% of the mouth half-width, then one pixel."""
        outline = np.concatenate([c.upper_out, c.lower_out[::-1]])
        centre = outline.mean(axis=0)
        d = outline - centre
        r = np.linalg.norm(d, axis=1, keepdims=True)
        grown = centre + d * (1 + 0.2 * c.halfwidth / np.maximum(r, 1e-9))
        canvas = Image.new("L", (self._px, self._px), 0)
        ImageDraw.Draw(canvas).polygon(self._xy(grown), fill=255)
        small = canvas.reduce(SUPERSAMPLE).filter(ImageFilter.MaxFilter(3))
        return (np.asarray(small) > 0).astype(np.uint8)


def render_frame(
    identity: Identity, pose: Pose, lighting: Lighting, mouth: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """One frame: mouth [5] -> (rgb uint8 [size,size,3], mask uint8 [size,size] in {0,1})."""
    return FaceRenderer(identity, pose, lighting, size).frame(mouth)


def render_clip(
    identity: Identity, pose: Pose, lighting: Lighting, mouth: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A clip: mouth [T,5] -> (frames uint8 [T,size,size,3], masks uint8 [T,size,size] in {0,1})."""
    mouth = np.asarray(mouth, dtype=np.float64)
    if mouth.ndim != 2 or mouth.shape[1] != 5 or len(mouth) == 0:
        raise ValueError(f"mouth trajectory has shape {mouth.shape}: expected (T>0, 5)")
    renderer = FaceRenderer(identity, pose, lighting, size)
    out = [renderer.frame(m) for m in mouth]
    return np.stack([f for f, _ in out]), np.stack([k for _, k in out])
