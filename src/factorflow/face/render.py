"""Render one output frame: the target frame with its mouth moved by the driver's motion.

1. Warp (native resolution): the mouth-and-chin region of the target frame is warped piecewise-
   affinely so its mesh points go from where they are to the target's neutral plus the driver's
   relative motion (`mouthwarp`). Outside the region every pixel is the target's.
2. Mouth interior (the flow): a landmark-aligned crop of the lower face goes through the mouth
   flow, encoded under the target's own geometry and decoded under the new one (the warped crop
   and the new inner-lip mask are its condition); its output, less its 2x2 squeeze grid
   (`without_grid`), fills the polygon of the new inner lips only, where a closed mouth has no
   pixels to warp: the lips stay the warp's.
3. With `interior="driver"`: the driver frame's own mouth interior (the polygon of its inner
   lips) warped piecewise-affinely onto the new inner lips and colour-matched to the target
   (per channel, the gain that takes the driver's lips to the target's), over the flow's
   interior where the driver's mouth is open (`driver_interior`).
4. The target's own interior (its teeth, when they show): carried at native resolution, the part
   near the upper lip with the upper lip and the rest with the jaw, over the flow's interior.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from factorflow.face.align import transform_points, warp
from factorflow.face.landmarks import (
    INNER_CONTOUR,
    INNER_LIP_CONTOUR,
    OUTER_LIPS,
    inner_lip_opening,
)
from factorflow.face.warp import (
    Region,
    crop_matrix,
    face_axes,
    mouth_region,
    piecewise_warp,
    polygon_mask,
)

__all__ = [
    "CROP_DOWN_IOD",
    "CROP_SIDE_IOD",
    "DRIVER_OPEN",
    "FEATHER",
    "GRID_SIGMA",
    "INTERIORS",
    "MIN_INTERIOR",
    "SHARPEN",
    "MouthRenderer",
    "Painter",
    "Rendered",
    "shift_inverse",
    "without_grid",
]

# painter(own crops, own inner masks, warped crops, new inner masks) -> crops: batches [B,S,S,...]
Painter = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
CROP_SIDE_IOD = 1.3  # crop side in inter-ocular distances
CROP_DOWN_IOD = 0.12  # crop centre below the mouth centre
SHARPEN = 2.0  # unsharp-mask amount on the upsampled painted interior
MIN_INTERIOR = 4  # crop pixels of mouth interior below which the flow is not run
FEATHER = 1.0  # painted-crop pixels over which the interior fades in inside the inner lips
GRID_SIGMA = 4.0  # pixels of the painted crop over which its 2x2 grid may vary
INTERIORS = ("flow", "driver")  # what fills the new inner lips
# The driver's inner-lip opening (gap over mouth width) over which its own interior fades in:
# a nearly closed driver mouth has only lip pixels between its inner lips.
DRIVER_OPEN = (0.04, 0.10)
GAIN_RANGE = (0.5, 2.0)  # per-channel colour gain from the driver's lips to the target's


@dataclass
class Rendered:
    frame: np.ndarray
    box: tuple[int, int, int, int]  # y0, x0, y1, x1 of the pasted region
    mask: np.ndarray  # bool [y1-y0, x1-x0]: pixels that may differ from the target's


class MouthRenderer:
    def __init__(
        self,
        neutral: np.ndarray,
        painter: Painter | None = None,
        crop_size: int = 64,
        interior: str = "flow",
    ):
        """`neutral`: the target's neutral landmarks [478, 2] in its canonical frame. `interior`:
        "flow" paints the mouth interior with the flow alone; "driver" puts the driver frame's
        own interior over it (`render` / `render_many` are then given the driver's frames)."""
        if interior not in INTERIORS:
            raise ValueError(f"interior {interior!r}: expected one of {', '.join(INTERIORS)}")
        self.interior = interior
        self.neutral = neutral
        self.region: Region = mouth_region(neutral)
        self.painter = painter
        self.crop_size = crop_size
        self._lookup = {int(p): i for i, p in enumerate(self.region.points)}
        self.inner = np.array([self._lookup[p] for p in INNER_CONTOUR])
        centre, u, iod = face_axes(neutral)
        v = np.array([-u[1], u[0]])
        self.crop_centre = centre + CROP_DOWN_IOD * iod * v

    def geometry(self, landmarks: np.ndarray, to_canonical: np.ndarray, delta: np.ndarray):
        """(src points, dst points) of the region in frame coordinates."""
        pts = self.region.points
        src = landmarks[pts].astype(np.float64)
        back = inverse(to_canonical)
        goal = transform_points(self.neutral[pts] + delta[pts], back)
        dst = src + self.region.weights[:, None] * (goal - src)
        return src, dst

    def crop_transform(self, to_canonical: np.ndarray) -> np.ndarray:
        back = inverse(to_canonical)
        centre = transform_points(self.crop_centre[None], back)[0]
        linear = back[:, :2]
        scale = np.sqrt(abs(np.linalg.det(linear)))
        u = linear @ np.array([1.0, 0.0]) / scale
        _, _, iod = face_axes(self.neutral)
        return crop_matrix(centre, u, CROP_SIDE_IOD * iod * scale, self.crop_size)

    def render(
        self,
        frame: np.ndarray,
        landmarks: np.ndarray,
        to_canonical: np.ndarray,
        delta: np.ndarray,
        driver: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Rendered:
        """One frame: warp, paint the interior (a batch of one), paste. `driver`: (frame,
        landmarks [478, 2]) of the driver, for `interior="driver"`."""
        job = self.prepare(frame, landmarks, to_canonical, delta)
        job.driver = driver
        if self.painter is not None:
            painted = self.painter(
                job.own[None], job.own_mask[None], job.new[None], job.new_mask[None]
            )
            self.finish(job, painted[0])
        return job.rendered

    def render_many(
        self, items: list[tuple], inplace: bool = False, drivers: list | None = None
    ) -> list[Rendered]:
        """Frames [(frame, landmarks, to_canonical, delta), ...]: the flow runs once on them all.
        `inplace` renders into the frames themselves (no whole-frame copy; the caller no longer
        needs the originals). `drivers`: per item the driver's (frame, landmarks), for
        `interior="driver"`."""
        jobs = [self.prepare(*item, inplace=inplace) for item in items]
        for job, driver in zip(jobs, drivers or [None] * len(jobs), strict=True):
            job.driver = driver
        # A closed mouth has no interior to paint: the flow runs only where the mouth is open.
        open_jobs = [j for j in jobs if j.new_mask is not None and j.new_mask.sum() >= MIN_INTERIOR]
        if self.painter is not None and open_jobs:
            stack = lambda name: np.stack([getattr(j, name) for j in open_jobs])  # noqa: E731
            painted = self.painter(stack("own"), stack("own_mask"), stack("new"), stack("new_mask"))
            for job, crop in zip(open_jobs, painted, strict=True):
                self.finish(job, crop)
        return [job.rendered for job in jobs]

    def prepare(
        self,
        frame: np.ndarray,
        landmarks: np.ndarray,
        to_canonical: np.ndarray,
        delta: np.ndarray,
        inplace: bool = False,
    ) -> _Job:
        src, dst = self.geometry(landmarks, to_canonical, delta)
        patch, covered, (y0, x0) = piecewise_warp(frame, src, dst, self.region.triangles)
        h, w = covered.shape
        source = frame[y0 : y0 + h, x0 : x0 + w].copy()
        size = self.crop_size
        crop_m = own = None
        if self.painter is not None:
            crop_m = self.crop_transform(to_canonical)
            own = warp(frame, crop_m, size)  # before the frame changes (rendered in place)
        out = frame if inplace else frame.copy()
        view = out[y0 : y0 + h, x0 : x0 + w]
        np.copyto(view, patch, where=covered[..., None])
        job = _Job(Rendered(out, (y0, x0, y0 + h, x0 + w), covered), dst, src, source, landmarks)
        if self.painter is not None:
            job.crop_m, job.own = crop_m, own
            job.new = warp(out, job.crop_m, size)
            job.own_mask = polygon_mask(transform_points(src[self.inner], job.crop_m), (size, size))
            job.new_mask = polygon_mask(transform_points(dst[self.inner], job.crop_m), (size, size))
        return job

    def finish(self, job: _Job, painted: np.ndarray) -> None:
        """Paste the painted crop between the new inner lips, inside the region. The lips are
        the warp's: the painted crop covers the polygon of the new inner lips and fades out
        across their inner edge only, so the flow never repaints a lip."""
        import cv2

        y0, x0, y1, x1 = job.rendered.box
        covered = job.rendered.mask
        scale = max(1.0, 1.0 / np.sqrt(abs(np.linalg.det(job.crop_m[:, :2]))))
        ramp = FEATHER * scale
        # Only pixels between the new inner lips change, so the work is done on their box (and
        # the target's own inner lips', whose interior is carried), grown by the widest filter's
        # reach (4 sigma): inside the inner lips every value is the one the whole patch gives
        # (the output is bit for bit the same).
        margin = int(np.ceil(4 * max(ramp, 0.7 * scale, 1.0))) + 3
        lips_at = np.concatenate([job.dst[self.inner], job.src[self.inner]]) - [x0, y0]
        lo = np.floor(lips_at.min(0)).astype(int) - margin
        hi = np.ceil(lips_at.max(0)).astype(int) + margin + 1
        bx0, by0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        bx1, by1 = min(int(hi[0]), x1 - x0), min(int(hi[1]), y1 - y0)
        if bx1 <= bx0 or by1 <= by0:
            return
        box = (by0, bx0, by1, bx1)
        h, w = by1 - by0, bx1 - bx0
        oy, ox = y0 + by0, x0 + bx0  # the box's corner in the frame
        view = job.rendered.frame[oy : oy + h, ox : ox + w]
        lips = covered[by0:by1, bx0:bx1]
        # Warped from the patch's corner (only as far as the box reaches), as on the whole patch:
        # a warp started at the box's corner rounds its coordinates differently.
        shift = np.array([[1, 0, x0], [0, 1, y0]], np.float64)
        to_patch = shift_inverse(job.crop_m, shift)
        back = cv2.warpAffine(
            without_grid(painted),
            to_patch,
            (bx1, by1),
            flags=cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REPLICATE,
        )[by0:, bx0:]
        inner = polygon_mask(job.dst[self.inner], (h, w), (oy, ox))
        if scale > 1.2 and SHARPEN > 0:
            # The crop is upsampled `scale` times: restore edge contrast lost to the resampling.
            soft = cv2.GaussianBlur(back, (0, 0), 0.7 * scale).astype(np.float32)
            back = np.clip(back + SHARPEN * (back - soft), 0, 255).astype(np.uint8)
        if self.interior == "driver" and job.driver is not None:
            theirs, weight = self.driver_interior(job, box)
            if theirs is not None:
                w3 = weight[..., None]
                back = np.clip(back * (1 - w3) + theirs * w3 + 0.5, 0, 255).astype(np.uint8)
        teeth, weight = self.own_interior(job, box)
        if teeth is not None:
            back = (back * (1 - weight[..., None]) + teeth * weight[..., None]).astype(np.uint8)
        # The lips are the warp's, and the mesh has a hole between the new inner lips: the
        # hole's rim takes the lips' colour (spread inwards from the warped pixels), and the
        # painted interior fades in over FEATHER crop pixels inside the rim. No step at the lip
        # edge, no lip repainted, nothing outside the inner lips changed.
        hole = inner > 0
        depth = cv2.distanceTransform(inner, cv2.DIST_L2, 3)[hole]
        alpha = np.clip(depth / ramp, 0.0, 1.0)
        alpha = (alpha * alpha * (3 - 2 * alpha))[..., None]
        weights = lips.astype(np.float32)
        spread = cv2.GaussianBlur(weights, (0, 0), ramp)[hole][..., None]
        rim = cv2.GaussianBlur(view * weights[..., None], (0, 0), ramp)[hole]
        rim = rim / np.maximum(spread, 1e-3)
        base = np.where(lips[hole][..., None], view[hole], rim)
        mask = covered.copy()
        mask[by0:by1, bx0:bx1] |= hole
        job.rendered.mask = mask
        blend = base * (1 - alpha) + back[hole] * alpha + 0.5
        view[hole] = np.clip(blend, 0, 255).astype(np.uint8)

    def driver_interior(
        self, job: _Job, box: tuple[int, int, int, int]
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """The driver frame's own mouth interior, warped onto the new inner lips: a fan of
        triangles about the inner-lip polygon's centre, each driver triangle mapped affinely onto
        the output's (extended 2 px outwards, so the polygon's rim is covered), and its colours
        scaled per channel by the gain that takes the driver's lips (between its outer and inner
        lip polygons) to the target's. -> (pixels [h, w, 3] float32, weight [h, w] in 0..1) for
        the patch's `box`; the weight fades in with the driver's opening (`DRIVER_OPEN`), or
        (None, _) when the driver's mouth is closed."""
        import cv2

        d_frame, d_lms = job.driver
        y0, x0, _, _ = job.rendered.box
        by0, bx0, by1, bx1 = box
        h, w = by1 - by0, bx1 - bx0
        oy, ox = y0 + by0, x0 + bx0
        lo, hi = DRIVER_OPEN
        fade = float(np.clip((inner_lip_opening(d_lms) - lo) / (hi - lo), 0.0, 1.0))
        fade = fade * fade * (3 - 2 * fade)
        if fade <= 0:
            return None, np.zeros((h, w), np.float32)
        src = np.asarray(d_lms, np.float64)[list(INNER_CONTOUR)]
        dst = job.dst[self.inner] - [ox, oy]
        src = np.concatenate([src, src.mean(0, keepdims=True)])
        dst = np.concatenate([dst, dst.mean(0, keepdims=True)])
        k = len(INNER_CONTOUR)
        ids = np.full((h, w), -1, np.int32)
        mats = []
        for i in range(k):
            tri = [i, (i + 1) % k, k]
            m = cv2.getAffineTransform(dst[tri].astype(np.float32), src[tri].astype(np.float32))
            mats.append(m)
            out = dst[tri].copy()
            for j in (0, 1):  # the outer corners, 2 px further from the centre
                ray = out[j] - out[2]
                out[j] += 2.0 * ray / max(float(np.linalg.norm(ray)), 1e-6)
            pts = np.round(out * 16).astype(np.int32)
            cv2.fillConvexPoly(ids, pts, i, lineType=cv2.LINE_8, shift=4)
        covered = ids >= 0
        if not covered.any():
            return None, np.zeros((h, w), np.float32)
        table = np.concatenate([np.stack(mats).reshape(k, 6), np.zeros((1, 6))]).astype(np.float32)
        m = table[ids]  # uncovered pixels (id -1) take the zero row: masked out below
        xs = np.arange(w, dtype=np.float32)[None]
        ys = np.arange(h, dtype=np.float32)[:, None]
        map_x = m[..., 0] * xs + m[..., 1] * ys + m[..., 2]
        map_y = m[..., 3] * xs + m[..., 4] * ys + m[..., 5]
        layer = cv2.remap(
            d_frame, map_x, map_y, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        ).astype(np.float32)
        gain = _lips_mean(job.source, job.landmarks, (y0, x0)) / np.maximum(
            _lips_mean(d_frame, d_lms, (0, 0)), 1.0
        )
        layer *= np.clip(gain, *GAIN_RANGE)
        weight = covered.astype(np.float32) * fade
        return np.clip(layer, 0, 255), weight

    def own_interior(
        self, job: _Job, box: tuple[int, int, int, int] | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """The target's own mouth interior (its teeth, when they show) carried along: the part
        nearer the upper inner lip moves with the upper lip, the rest with the lower lip (the
        jaw), at the frame's own resolution. -> (pixels [h,w,3], weight [h,w] in 0..1) for the
        patch's `box` (y0, x0, y1, x1 within the patch; the whole patch by default), or
        (None, _) when the target's mouth is closed: the flow paints all of it. The box holds
        both inner-lip polygons with a few pixels to spare."""
        import cv2

        y0, x0, y1, x1 = job.rendered.box
        by0, bx0, by1, bx1 = box if box is not None else (0, 0, y1 - y0, x1 - x0)
        h, w = by1 - by0, bx1 - bx0
        oy, ox = y0 + by0, x0 + bx0
        src, dst = job.src[self.inner], job.dst[self.inner]
        own = polygon_mask(src, (h, w), (oy, ox))
        if own.sum() < MIN_INTERIOR:
            return None, own
        upper = len(INNER_LIP_CONTOUR)
        lines = {
            "upper": src[:upper],
            "lower": np.concatenate([src[upper - 1 : upper], src[upper:], src[:1]]),
        }
        distance = {}
        for name, points in lines.items():
            canvas = np.ones((h, w), np.uint8)
            pts = np.round((points - [ox, oy]) * 16).astype(np.int32)
            cv2.polylines(canvas, [pts], False, 0, lineType=cv2.LINE_8, shift=4)
            distance[name] = cv2.distanceTransform(canvas, cv2.DIST_L2, 3)
        near_upper = distance["upper"] <= distance["lower"]
        layer = np.zeros((h, w, 3), np.float32)
        weight = np.zeros((h, w), np.float32)
        parts = (
            (own * near_upper, (dst[:upper] - src[:upper]).mean(0)),
            (own * ~near_upper, (dst[upper:] - src[upper:]).mean(0)),
        )
        for part, (dx, dy) in parts:
            move = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
            # The target's pixels are read from the whole patch (moved in from beyond the box).
            read = np.array([[1, 0, dx - bx0], [0, 1, dy - by0]], np.float64)
            moved = cv2.warpAffine(
                job.source, read, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            where = cv2.warpAffine(part.astype(np.float32), move, (w, h), flags=cv2.INTER_LINEAR)
            layer += moved * where[..., None]
            weight += where
        layer /= np.maximum(weight, 1e-6)[..., None]
        # Eroded a pixel and feathered: the lip edge of the carried interior is not pasted twice.
        weight = cv2.GaussianBlur(cv2.erode(np.clip(weight, 0, 1), np.ones((3, 3))), (0, 0), 1.0)
        return layer, weight


@dataclass
class _Job:
    rendered: Rendered
    dst: np.ndarray
    src: np.ndarray
    source: np.ndarray  # the target frame's pixels under the patch, before the warp
    landmarks: np.ndarray | None = None  # the target frame's landmarks [478, 2]
    driver: tuple[np.ndarray, np.ndarray] | None = None  # the driver's (frame, landmarks)
    crop_m: np.ndarray | None = None
    own: np.ndarray | None = None
    new: np.ndarray | None = None
    own_mask: np.ndarray | None = None
    new_mask: np.ndarray | None = None


def _lips_mean(image: np.ndarray, landmarks: np.ndarray, offset=(0, 0)) -> np.ndarray:
    """Mean colour [3] of the lips (between the outer and inner lip polygons) of `image`, whose
    pixel (0, 0) is frame pixel `offset` (y0, x0); the image's mean where no lip pixel is in it."""
    h, w = image.shape[:2]
    outer = landmarks[list(OUTER_LIPS)]
    lo = np.floor(outer.min(0) - [offset[1], offset[0]]).astype(int)
    hi = np.ceil(outer.max(0) - [offset[1], offset[0]]).astype(int) + 1
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]), w), min(int(hi[1]), h)
    if x1 <= x0 or y1 <= y0:
        return image.reshape(-1, image.shape[-1]).mean(0)
    at = (offset[0] + y0, offset[1] + x0)
    ring = polygon_mask(outer, (y1 - y0, x1 - x0), at) > 0
    ring &= polygon_mask(landmarks[list(INNER_CONTOUR)], ring.shape, at) == 0
    pixels = image[y0:y1, x0:x1][ring]
    if len(pixels) < MIN_INTERIOR:
        return image.reshape(-1, image.shape[-1]).mean(0)
    return pixels.astype(np.float64).mean(0)


def without_grid(crop: np.ndarray) -> np.ndarray:
    """uint8 crop [S, S, 3] less its period-2 patterns: the flow's 2x2 squeeze leaves one, and
    the upsampling and sharpening would enlarge it. Each of the three (columns, rows, both) is
    demodulated to 0 Hz, smoothed over GRID_SIGMA pixels (a slowly varying pattern) and
    subtracted, so the crop loses only frequencies within about 1 / (2 pi GRID_SIGMA) of its
    Nyquist frequency: no blur below that."""
    import cv2

    out = crop.astype(np.float32)
    for wave in _waves(crop.shape[0]):
        level = cv2.GaussianBlur(out * wave, (0, 0), GRID_SIGMA, borderType=cv2.BORDER_REFLECT_101)
        out -= level * wave
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of an affine transform M [2, 3], in closed form (`align.inverse` without a
    LAPACK call, which costs more than the formula when BLAS threads are busy elsewhere)."""
    (a, b, tx), (c, d, ty) = np.asarray(matrix, np.float64)
    det = a * d - b * c
    linear = np.array([[d, -b], [-c, a]]) / det
    return np.concatenate([linear, -linear @ np.array([[tx], [ty]])], axis=1)


@functools.cache
def _waves(size: int) -> tuple[np.ndarray, ...]:
    """The three period-2 patterns of a size x size crop (columns, rows, both), [S, S, 1]."""
    y, x = np.mgrid[:size, :size]
    signs = ((-1.0) ** x, (-1.0) ** y, (-1.0) ** (x + y))
    return tuple(sign.astype(np.float32)[..., None] for sign in signs)


def shift_inverse(crop_m: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """crop -> patch affine, where patch pixel p is frame pixel p + (x0, y0)."""
    back = inverse(crop_m)  # crop -> frame
    back = back.copy()
    back[:, 2] -= shift[:, 2]
    return back
