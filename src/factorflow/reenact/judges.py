"""The realism judges on a streamed reenactment, from small crops kept per frame.

`reenact --report` cannot keep the clip, so `RealismRecorder` keeps, per frame, the mouth crop
(`metrics.realism.crops`: the flow's alignment, 64 px, 12 kB) and its landmarks in crop
coordinates, of the output, the driver and each target frame once; and, for the identity judge,
a face crop of output and target at `IDENTITY_SAMPLES` frames picked before the clip starts.
A crop with its landmarks in crop coordinates is its own mouth crop (the alignment maps it onto
itself), so the judges run on the crops as they run on whole frames:
- grid (`grid_ratio`) and lips (`lip_preservation`) against the target's own mouth;
- temporal stability (`temporal_stability`) against the driver, frame for frame;
- identity (`identity_distance`) when the `identity` extra is installed, else a one-line note.
The two-sample test needs generated and real mouths of several faces (each face is held out in
turn), which one pair does not have: `benchmarks/realvideo_figures.py` runs it over its pairs.
"""

from __future__ import annotations

import numpy as np

from factorflow.face.align import transform_points, warp
from factorflow.metrics.realism.crops import CROP_SIZE, crop_transform
from factorflow.metrics.realism.identity import SAME_PERSON

__all__ = [
    "FACE_MARGIN",
    "IDENTITY_SAMPLES",
    "TWO_SAMPLE_NOTE",
    "RealismRecorder",
    "face_crop",
    "mouth_crop",
]

IDENTITY_SAMPLES = 12
FACE_MARGIN = 0.25  # of the landmark box, each side, in the identity judge's face crops
TWO_SAMPLE_NOTE = (
    "two-sample test not run on one pair: it holds out each of several faces in turn "
    "(benchmarks/realvideo_figures.py runs it over its pairs)"
)


def mouth_crop(frame: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE):
    """(uint8 [size, size, 3] mouth crop, its landmarks [478, 2] in crop coordinates)."""
    m = crop_transform(landmarks, size)
    return warp(np.ascontiguousarray(frame), m, size), transform_points(
        landmarks.astype(np.float64), m
    )


def face_crop(frame: np.ndarray, landmarks: np.ndarray, margin: float = FACE_MARGIN):
    """(the face's box grown `margin` each side, clipped to the frame; landmarks in it)."""
    (x0, y0), (x1, y1) = np.nanmin(landmarks, 0), np.nanmax(landmarks, 0)
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    h, w = frame.shape[:2]
    left, top = max(0, int(x0 - dx)), max(0, int(y0 - dy))
    right, bottom = min(w, int(np.ceil(x1 + dx))), min(h, int(np.ceil(y1 + dy)))
    return frame[top:bottom, left:right].copy(), landmarks - [left, top]


class _Track:
    """Mouth crops and crop landmarks of one clip, NaN landmarks where no face."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.crops: list[np.ndarray] = []
        self.landmarks: list[np.ndarray] = []

    def add(self, frame: np.ndarray | None, landmarks: np.ndarray | None) -> None:
        if frame is None or landmarks is None:
            self.crops.append(np.zeros((self.size, self.size, 3), np.uint8))
            self.landmarks.append(np.full((478, 2), np.nan))
            return
        crop, local = mouth_crop(frame, landmarks, self.size)
        self.crops.append(crop)
        self.landmarks.append(local)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.stack(self.crops), np.stack(self.landmarks)


class RealismRecorder:
    """Collects, frame by frame, what the single-pair realism judges need (module docstring).

    `frames`: the output's length, known before the first frame (it picks the identity samples).
    """

    def __init__(self, frames: int, size: int = CROP_SIZE) -> None:
        self.output, self.driver, self.target = _Track(size), _Track(size), _Track(size)
        self._seen: set[int] = set()
        self.samples = set(np.linspace(0, frames - 1, min(IDENTITY_SAMPLES, frames)).round())
        self.faces: list[tuple] = []  # (output crop, its landmarks, target crop, its landmarks)
        self._t = 0

    def add(
        self,
        output: np.ndarray,
        output_landmarks: np.ndarray | None,
        driver: np.ndarray | None,
        driver_landmarks: np.ndarray | None,
        target: np.ndarray,
        target_landmarks: np.ndarray | None,
        target_index: int,
    ) -> None:
        """One output frame, its driver frame and the target frame `target_index` it came from
        (landmarks [478, 2], None where no face)."""
        self.output.add(output, output_landmarks)
        self.driver.add(driver, driver_landmarks)
        if target_index not in self._seen and target_landmarks is not None:
            self._seen.add(target_index)
            self.target.add(target, target_landmarks)
        if (
            self._t in self.samples
            and output_landmarks is not None
            and target_landmarks is not None
        ):
            self.faces.append(
                (*face_crop(output, output_landmarks), *face_crop(target, target_landmarks))
            )
        self._t += 1

    def figures(self) -> dict:
        """The judges' figures (`metrics.realism`), with "realism_notes" for those not run."""
        from factorflow.metrics.realism import (
            grid_ratio,
            identity_distance,
            identity_missing,
            lip_preservation,
            temporal_stability,
        )

        out, out_lms = self.output.arrays()
        figures: dict = {}
        notes = [TWO_SAMPLE_NOTE]
        if not self.target.crops or not np.isfinite(out_lms[:, 0, 0]).any():
            return {"realism_notes": ["realism judges not run: no frame with a face"]}
        own, own_lms = self.target.arrays()
        size = self.output.size
        figures.update(grid_ratio(out, out_lms, own, own_lms, size))
        figures.update(lip_preservation(out, out_lms, own, own_lms, size))
        drv, drv_lms = self.driver.arrays()
        try:
            figures.update(temporal_stability(out, out_lms, drv, drv_lms, size))
        except ValueError as exc:  # a clip too short to have quiet frames
            notes.append(f"temporal judge not run: {exc}")
        missing = identity_missing()
        if missing is not None:
            notes.append(missing)
        elif self.faces:
            distances = [
                identity_distance(o[None], ol[None], t[None], tl[None])["identity_distance"]
                for o, ol, t, tl in self.faces
            ]
            figures.update(
                identity_distance=float(np.mean(distances)),
                identity_distance_max=float(np.max(distances)),
                same_person=float(np.mean(np.array(distances) < SAME_PERSON)),
                sampled=len(distances),
            )
        figures["realism_notes"] = notes
        return figures
