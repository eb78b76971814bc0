"""Lip-sync figures for real clips (no ground truth), from MediaPipe landmarks on the output.

- opening_corr: Pearson r of the driver's and the output's inner-lip opening (gap / mouth width);
  target_opening_corr: the same for the untouched target (the no-reenactment floor);
- range_ratio: the output's 5-95% opening range over the driver's (a frozen mouth scores 0);
- sharpness_ratio: variance of the Laplacian in the landmark mouth box of the output over the same
  in the target's own frame (1.0: as sharp as the person's own mouth), median over frames;
- identity_shift_iod: displacement of eye, brow and nose landmarks of the output from the
  target's, in inter-ocular distances (mean and 95th percentile over frames);
- outside_max_diff: the largest difference outside the pasted region (0: every pixel is the
  target's), measured on the frames before encoding.
`LipSyncMeter` collects these frame by frame (streaming); `lip_sync_metrics` is the older
whole-clip form used by the 64x64 real-AF pipeline.
"""

from __future__ import annotations

import functools

import numpy as np

from factorflow.face.landmarks import (
    MOUTH_CORNERS,
    MOUTH_MASK_SCALE,
    OUTER_LIPS,
    detect_landmarks,
    inner_lip_opening,
    interocular,
    mouth_mask,
)

__all__ = [
    "LipSyncMeter",
    "identity_points",
    "lip_sync_metrics",
    "mouth_box",
    "pearson",
    "sharpness",
    "spread",
]


@functools.cache
def identity_points() -> np.ndarray:
    """Landmark indices of the eyes, brows and nose (MediaPipe's own contour sets)."""
    from mediapipe.python.solutions import face_mesh_connections as c

    sets = (
        c.FACEMESH_LEFT_EYE,
        c.FACEMESH_RIGHT_EYE,
        c.FACEMESH_LEFT_EYEBROW,
        c.FACEMESH_RIGHT_EYEBROW,
        c.FACEMESH_NOSE,
    )
    return np.array(sorted({i for s in sets for edge in s for i in edge}))


def mouth_box(landmarks: np.ndarray, shape: tuple[int, int], grow: float = 0.1):
    """(y0, y1, x0, x1): the outer-lip bounding box grown by `grow` of its size, in the frame."""
    lips = landmarks[list(OUTER_LIPS)]
    lo, hi = lips.min(0), lips.max(0)
    pad = (hi - lo) * grow
    x0, y0 = np.floor(lo - pad).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int) + 1
    return max(y0, 0), min(y1, shape[0]), max(x0, 0), min(x1, shape[1])


def sharpness(image: np.ndarray, box) -> float:
    """Variance of the Laplacian of the grey image inside `box`."""
    import cv2

    y0, y1, x0, x1 = box
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    if grey.size < 9:
        return float("nan")
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spread(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan")
    lo, hi = np.percentile(values, [5, 95])
    return float(hi - lo)


class LipSyncMeter:
    """Per-frame figures of a reenactment; `summary()` turns them into the numbers above."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self,
        driver_landmarks: np.ndarray | None,
        target_frame: np.ndarray,
        target_landmarks: np.ndarray | None,
        output_frame: np.ndarray,
        output_landmarks: np.ndarray | None,
        pasted: tuple[tuple[int, int, int, int], np.ndarray] | None,
    ) -> None:
        """`pasted`: (box y0, x0, y1, x1; bool mask in the box) of pixels allowed to differ."""
        row = {"driver": np.nan, "target": np.nan, "output": np.nan}
        if driver_landmarks is not None:
            row["driver"] = float(inner_lip_opening(driver_landmarks))
        if target_landmarks is not None:
            row["target"] = float(inner_lip_opening(target_landmarks))
        outside = np.ones(output_frame.shape[:2], bool)
        if pasted is not None:
            (y0, x0, y1, x1), mask = pasted
            outside[y0:y1, x0:x1] &= ~mask
        diff = np.abs(output_frame.astype(np.int16) - target_frame)[outside]
        row["outside_max_diff"] = int(diff.max()) if diff.size else 0
        if output_landmarks is not None and target_landmarks is not None:
            row["output"] = float(inner_lip_opening(output_landmarks))
            shape = output_frame.shape[:2]
            own = sharpness(target_frame, mouth_box(target_landmarks, shape))
            row["sharpness"] = sharpness(output_frame, mouth_box(output_landmarks, shape)) / own
            ids = identity_points()
            shift = np.linalg.norm(output_landmarks[ids] - target_landmarks[ids], axis=-1)
            row["identity"] = float(shift.mean() / interocular(target_landmarks))
        self.rows.append(row)

    def summary(self) -> dict:
        get = lambda k: np.array([r.get(k, np.nan) for r in self.rows], float)  # noqa: E731
        d, o, t = get("driver"), get("output"), get("target")
        sharp, ident = get("sharpness"), get("identity")
        driver_range = spread(d)
        return {
            "frames": len(self.rows),
            "output_face_found": int(np.isfinite(o).sum()),
            "opening_corr": pearson(d, o),
            "target_opening_corr": pearson(d, t),
            "driver_opening_p5_p95": _pct(d),
            "output_opening_p5_p95": _pct(o),
            "target_opening_p5_p95": _pct(t),
            "range_ratio": spread(o) / driver_range if driver_range > 0 else float("nan"),
            "target_range_ratio": spread(t) / driver_range if driver_range > 0 else float("nan"),
            "sharpness_ratio": _nanmedian(sharp),
            "sharpness_ratio_p10": _nanpct(sharp, 10),
            "identity_shift_iod": _nanmean(ident),
            "identity_shift_iod_p95": _nanpct(ident, 95),
            "outside_max_diff": int(max((r["outside_max_diff"] for r in self.rows), default=0)),
        }


def _pct(values: np.ndarray) -> list[float]:
    values = values[np.isfinite(values)]
    return [float(v) for v in np.percentile(values, [5, 95])] if len(values) else []


def _nanmedian(values: np.ndarray) -> float:
    return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _nanpct(values: np.ndarray, q: float) -> float:
    return float(np.nanpercentile(values, q)) if np.isfinite(values).any() else float("nan")


def lip_sync_metrics(driver: np.ndarray, result, target: np.ndarray) -> dict:
    """The 64x64 real-AF pipeline's figures (`reenact.realvideo.RealReenactment`): opening r of
    output and untouched target, opening ranges, identity shift of the non-mouth landmarks and
    PSNR outside the pasted mouth."""
    out_lms = detect_landmarks(result.frames)
    found = ~np.isnan(out_lms[:, 0, 0])
    d_open = inner_lip_opening(result.driver_track.landmarks)
    o_open = inner_lip_opening(out_lms)
    t_lms = result.target_track.landmarks[result.target_index]
    t_open = inner_lip_opening(t_lms)
    eyes = interocular(t_lms)
    keep = np.setdiff1d(np.arange(out_lms.shape[1]), _mouth_region_points(t_lms[0]))
    shift = np.linalg.norm(out_lms[:, keep] - t_lms[:, keep], axis=-1).mean(1) / eyes
    masks = np.stack([mouth_mask(t, target.shape[1:3]) for t in t_lms]).astype(bool)
    diff = (result.frames.astype(np.float64) - target[result.target_index]) ** 2
    mse = diff[~np.broadcast_to(masks[..., None], diff.shape)].mean()
    return {
        "frames": int(len(found)),
        "output_face_found": int(found.sum()),
        "opening_corr": pearson(d_open[found], o_open[found]),
        "target_opening_corr": pearson(d_open, t_open),
        "driver_opening_range": [float(np.nanmin(d_open)), float(np.nanmax(d_open))],
        "output_opening_range": [float(np.nanmin(o_open[found])), float(np.nanmax(o_open[found]))],
        "identity_shift_iod": float(np.nanmean(shift[found])),
        "psnr_outside_mouth": float(min(100.0, 10 * np.log10(255.0**2 / max(mse, 1e-12)))),
    }


def _mouth_region_points(landmarks: np.ndarray) -> np.ndarray:
    from matplotlib.path import Path as MplPath

    lips = landmarks[list(OUTER_LIPS)]
    centre = landmarks[list(MOUTH_CORNERS)].mean(0)
    poly = MplPath(centre + MOUTH_MASK_SCALE * (lips - centre))
    return np.flatnonzero(poly.contains_points(landmarks))
