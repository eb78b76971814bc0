"""Face landmarks with MediaPipe Face Mesh (the `faces` extra: mediapipe 0.10.21, imported lazily).

mediapipe 0.10.21 is the last release that bundles its face models in the wheel, so nothing is
downloaded. Landmarks are pixel coordinates (x right, y down) of the 478-point refined mesh
(468 without `refine_landmarks`); a frame without a face gives all-NaN landmarks.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

NUM_LANDMARKS = 478
# Eye corners, not irises: the eye centre then ignores gaze. "Left" is image-left (the subject's
# right), matching the usual five-point order.
LEFT_EYE_CORNERS = (33, 133)
RIGHT_EYE_CORNERS = (362, 263)
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)
INNER_LIPS = (13, 14)  # upper, lower


class FaceMesh:
    """Per-frame landmarks of the largest face, pixel coords [478, 2] (NaN when no face).

    `static_image_mode=False` tracks the face across consecutive frames (faster and steadier:
    use one instance per video); True runs detection on every frame. Up to `max_num_faces`
    faces are found and the one with the largest landmark bounding box is kept.
    """

    def __init__(
        self,
        static_image_mode: bool = False,
        refine_landmarks: bool = True,
        max_num_faces: int = 3,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        import mediapipe as mp

        self.num_landmarks = NUM_LANDMARKS if refine_landmarks else 468
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static_image_mode,
            refine_landmarks=refine_landmarks,
            max_num_faces=max_num_faces,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Landmarks [K, 2] (pixels) of the largest face in RGB uint8 `frame` [H, W, 3]."""
        height, width = frame.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(frame))
        if not result.multi_face_landmarks:
            return np.full((self.num_landmarks, 2), np.nan)
        faces = [
            np.array([(p.x * width, p.y * height) for p in face.landmark])
            for face in result.multi_face_landmarks
        ]
        return max(faces, key=lambda f: np.prod(f.max(axis=0) - f.min(axis=0)))

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceMesh:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_landmarks(frames: Iterable[np.ndarray], static_image_mode: bool = False) -> np.ndarray:
    """Landmarks [T, 478, 2] (NaN rows where no face) of the largest face in each frame."""
    with FaceMesh(static_image_mode=static_image_mode) as mesh:
        return np.stack([mesh(frame) for frame in frames])


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """[..., 478, 2] -> [..., 5, 2]: left eye centre, right eye centre, nose tip, left and right
    mouth corners (image left/right)."""
    return np.stack(
        [
            landmarks[..., LEFT_EYE_CORNERS, :].mean(axis=-2),
            landmarks[..., RIGHT_EYE_CORNERS, :].mean(axis=-2),
            landmarks[..., NOSE_TIP, :],
            landmarks[..., MOUTH_CORNERS[0], :],
            landmarks[..., MOUTH_CORNERS[1], :],
        ],
        axis=-2,
    )


def mouth_centre(landmarks: np.ndarray) -> np.ndarray:
    """[..., 478, 2] -> [..., 2]: midpoint of the mouth corners."""
    return landmarks[..., MOUTH_CORNERS, :].mean(axis=-2)


def inner_lip_opening(landmarks: np.ndarray) -> np.ndarray:
    """[..., 478, 2] -> [...]: inner-lip gap (13 to 14) over mouth width (61 to 291)."""
    gap = np.linalg.norm(
        landmarks[..., INNER_LIPS[0], :] - landmarks[..., INNER_LIPS[1], :], axis=-1
    )
    width = np.linalg.norm(
        landmarks[..., MOUTH_CORNERS[0], :] - landmarks[..., MOUTH_CORNERS[1], :], axis=-1
    )
    return gap / width
