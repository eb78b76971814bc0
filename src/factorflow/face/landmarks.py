"""Face landmarks: MediaPipe Face Mesh (the `faces` extra: mediapipe 0.10.21, imported lazily)
and the landmark geometry every layer shares (indices, inter-ocular distance, mouth opening,
canonical head pose).

mediapipe 0.10.21 is the last release that bundles its face models in the wheel, so nothing is
downloaded. Landmarks are pixel coordinates (x right, y down) of the 478-point refined mesh; a
frame without a face gives a NaN row.

`FaceTracker` returns the landmarks of the `face`-th largest face (0: the largest) or None.
`track_landmarks` runs it over an iterable of frames and keeps only the landmarks ([T, 478, 2]
float32, NaN where no face), so memory grows by a few kB per frame, never by the frames themselves.

`normalise` maps every frame's landmarks onto one canonical head pose with a similarity fitted to
rigid points (eye corners, nose bridge and tip, forehead, temples): the mouth then moves in the
canonical frame while the head's motion is removed. `neutral_shape` is the clip's own rest mouth
(the mean of its least-open frames), so a clip's motion is its change from its own neutral.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from factorflow.face.align import transform_points, umeyama

__all__ = [
    "FACE_TOOL_SIDE",
    "INNER_CONTOUR",
    "INNER_LIPS",
    "INNER_LIP_CONTOUR",
    "INNER_LIP_LOWER",
    "LEFT_EYE",
    "MOUTH_CORNERS",
    "MOUTH_MASK_SCALE",
    "MOUTH_SHAPE_DIM",
    "MOUTH_SHAPE_POINTS",
    "NOSE_TIP",
    "NUM_LANDMARKS",
    "OUTER_LIPS",
    "RIGHT_EYE",
    "RIGID",
    "SMALL_FRAME",
    "FaceTracker",
    "detect_landmarks",
    "face_tool_scale",
    "find_landmarks",
    "five_points",
    "found",
    "inner_lip_opening",
    "interocular",
    "mouth_centre",
    "mouth_mask",
    "mouth_shape",
    "neutral_shape",
    "normalise",
    "to_canonical",
    "track_landmarks",
    "upscale",
]

NUM_LANDMARKS = 478
# Eye corners, not irises: the eye centre then ignores gaze. "Left" is image-left (the subject's
# right), matching the usual five-point order.
LEFT_EYE = (33, 133)
RIGHT_EYE = (362, 263)
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)
INNER_LIPS = (13, 14)  # upper, lower
INNER_LIP_CONTOUR = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)  # upper inner lip
INNER_LIP_LOWER = (324, 318, 402, 317, 14, 87, 178, 88, 95)
INNER_CONTOUR = INNER_LIP_CONTOUR + INNER_LIP_LOWER  # the mouth opening, as a closed polygon
OUTER_LIPS = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
)  # fmt: skip
MOUTH_MASK_SCALE = 1.6  # the mouth region: the outer lips grown this much about the mouth centre
# Points that do not move when the mouth and jaw move.
RIGID = (33, 133, 362, 263, 6, 168, 197, 195, 5, 4, 1, 10, 151, 9, 234, 454, 127, 356)


class FaceTracker:
    """Landmarks [478, 2] (pixels) of the `face`-th largest face in each RGB frame, or None.

    `static=True` detects afresh in every frame (stills, or unrelated frames); otherwise faces
    are tracked from frame to frame (one tracker per video).
    """

    def __init__(self, static: bool = False, face: int = 0) -> None:
        if face < 0:
            raise ValueError(f"face index must be >= 0, got {face}")
        self.face = face
        self.static = static
        self._mesh = None

    def _open(self, frame: np.ndarray) -> None:
        import mediapipe as mp

        # Tracking more faces than a frame holds makes MediaPipe run its detector on every
        # frame, so the first frame decides: track one face more than wanted only when the
        # first frame shows more faces than that (then the largest can be picked each frame).
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=8) as probe:
            first = probe.process(np.ascontiguousarray(frame)).multi_face_landmarks or []
        wanted = self.face + 1 if len(first) <= self.face + 1 else self.face + 2
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=self.static,
            refine_landmarks=True,
            max_num_faces=max(wanted, len(first)) if self.static else wanted,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        if self._mesh is None:
            self._open(frame)
        height, width = frame.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(frame))
        faces = result.multi_face_landmarks or []
        if len(faces) <= self.face:
            return None
        points = [
            np.array([(p.x * width, p.y * height) for p in f.landmark], np.float32) for f in faces
        ]
        points.sort(key=lambda f: -float(np.prod(f.max(0) - f.min(0))))
        return points[self.face]

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def most_faces(frames: Iterable[np.ndarray]) -> int:
    """The most faces MediaPipe finds in one of `frames` (each detected afresh, up to 8)."""
    import mediapipe as mp

    most = 0
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=8) as mesh:
        for frame in frames:
            faces = mesh.process(np.ascontiguousarray(frame)).multi_face_landmarks or []
            most = max(most, len(faces))
    return most


def track_landmarks(
    frames: Iterable[np.ndarray], static: bool = False, face: int = 0
) -> tuple[np.ndarray, tuple[int, int]]:
    """Landmarks [T, 478, 2] float32 (NaN rows: no face) and the frame size (H, W)."""
    rows, shape = [], (0, 0)
    with FaceTracker(static=static, face=face) as tracker:
        for frame in frames:
            shape = frame.shape[:2]
            found = tracker(frame)
            rows.append(np.full((NUM_LANDMARKS, 2), np.nan, np.float32) if found is None else found)
    if not rows:
        raise ValueError("no frames")
    return np.stack(rows), shape


def found(landmarks: np.ndarray) -> np.ndarray:
    """bool [T]: frames with a face."""
    return ~np.isnan(landmarks[:, 0, 0])


def to_canonical(landmarks: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Similarities [T, 2, 3] taking each frame's rigid points onto `reference` [len(RIGID), 2]
    (NaN matrices where no face)."""
    out = np.full((len(landmarks), 2, 3), np.nan)
    for t in np.flatnonzero(found(landmarks)):
        out[t] = umeyama(landmarks[t, list(RIGID)], reference)
    return out


def normalise(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(canonical landmarks [T, 478, 2], frame -> canonical similarities [T, 2, 3]).

    The canonical frame is the clip's mean rigid shape in the first found frame's pixel scale."""
    hits = np.flatnonzero(found(landmarks))
    if not len(hits):
        raise ValueError("no face in any frame")
    reference = landmarks[hits[0], list(RIGID)].astype(np.float64)
    for _ in range(2):
        mats = to_canonical(landmarks, reference)
        reference = np.nanmean(
            transform_points(landmarks[hits][:, list(RIGID)], mats[hits]), axis=0
        )
    mats = to_canonical(landmarks, reference)
    canon = np.full(landmarks.shape, np.nan)
    canon[hits] = transform_points(landmarks[hits].astype(np.float64), mats[hits])
    return canon, mats


def neutral_shape(canonical: np.ndarray, quantile: float = 0.15) -> np.ndarray:
    """[478, 2]: the mean canonical shape of the clip's least-open frames (its rest mouth)."""
    hits = np.flatnonzero(found(canonical))
    opening = inner_lip_opening(canonical[hits])
    rest = hits[opening <= np.quantile(opening, quantile)]
    return canonical[rest].mean(0)


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """[...] distance between the eye centres of landmarks [..., 478, 2]."""
    left = landmarks[..., list(LEFT_EYE), :].mean(-2)
    right = landmarks[..., list(RIGHT_EYE), :].mean(-2)
    return np.linalg.norm(right - left, axis=-1)


def detect_landmarks(
    frames: Iterable[np.ndarray], static: bool = False, face: int = 0
) -> np.ndarray:
    """Landmarks [T, 478, 2] (NaN rows where no face) of the `face`-th largest face (0: the
    largest) in each frame."""
    return track_landmarks(frames, static=static, face=face)[0]


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """[..., 478, 2] -> [..., 5, 2]: left eye centre, right eye centre, nose tip, left and right
    mouth corners (image left/right)."""
    return np.stack(
        [
            landmarks[..., LEFT_EYE, :].mean(axis=-2),
            landmarks[..., RIGHT_EYE, :].mean(axis=-2),
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


def mouth_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 [H,W] mask of the mouth region of landmarks [478, 2]: the outer lips grown
    `MOUTH_MASK_SCALE` times about the mouth centre."""
    from PIL import Image, ImageDraw

    lips = landmarks[list(OUTER_LIPS)]
    centre = landmarks[list(MOUTH_CORNERS)].mean(0)
    poly = centre + MOUTH_MASK_SCALE * (lips - centre)
    image = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(image).polygon([tuple(p) for p in poly], fill=1)
    return np.asarray(image, np.uint8)


SMALL_FRAME = 128  # frames with a shorter side below this are upscaled for the face tool...
FACE_TOOL_SIDE = 256  # ... to about this side


def face_tool_scale(side: int) -> int:
    """The integer factor a frame whose shorter side is `side` pixels is upscaled by before the
    face tool and the landmark warp run on it. MediaPipe misses small faces: on 64 px synthetic
    frames it finds every face only at 4x (256 px)."""
    return 1 if side >= SMALL_FRAME else -(-FACE_TOOL_SIDE // side)


def upscale(
    frames: np.ndarray, landmarks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 frames [T, H, W, 3] (and their landmarks [T, 478, 2] in frame pixels) at the face
    tool's working size (`face_tool_scale`): bicubic, landmarks scaled alike."""
    import cv2

    k = face_tool_scale(min(frames.shape[1:3]))
    if k == 1:
        return frames, landmarks
    size = (frames.shape[2] * k, frames.shape[1] * k)
    big = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames])
    return big, None if landmarks is None else landmarks * k


def find_landmarks(frames: np.ndarray, static: bool = False) -> np.ndarray:
    """Landmarks [T, 478, 2] float32 in the pixels of frames [T, H, W, 3] (NaN rows where no
    face), found at the face tool's working size (small frames upscaled first)."""
    big, _ = upscale(frames)
    k = big.shape[1] // frames.shape[1]
    return track_landmarks(big, static=static)[0] / k


MOUTH_SHAPE_POINTS = OUTER_LIPS + INNER_CONTOUR
MOUTH_SHAPE_DIM = 2 * len(MOUTH_SHAPE_POINTS) + 2


def mouth_shape(landmarks: np.ndarray) -> np.ndarray:
    """landmarks [N, 478, 2] -> [N, MOUTH_SHAPE_DIM] float32: the lip contours (outer, inner)
    about the mouth centre, turned to the eye line and in inter-ocular distances, then the
    inner-lip opening and a found flag. The mouth's geometry normalised by the face: where the
    face is, how large and how turned say nothing in it. A frame without a face gives zeros."""
    out = np.zeros((len(landmarks), MOUTH_SHAPE_DIM), np.float32)
    for i in np.flatnonzero(found(landmarks)):
        points = landmarks[i].astype(np.float64)
        left, right = points[list(LEFT_EYE)].mean(0), points[list(RIGHT_EYE)].mean(0)
        iod = max(float(np.linalg.norm(right - left)), 1e-6)
        u = (right - left) / iod
        turn = np.array([[u[0], u[1]], [-u[1], u[0]]])
        centre = points[list(MOUTH_CORNERS)].mean(0)
        lips = (points[list(MOUTH_SHAPE_POINTS)] - centre) @ turn.T / iod
        out[i, :-2] = lips.ravel()
        out[i, -2] = inner_lip_opening(points)
        out[i, -1] = 1.0
    return out
