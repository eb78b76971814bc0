"""Face-tool landmarks for a corpus of frame folders (LRW frame layout), found from the pixels.

`write_landmarks(root)` runs MediaPipe on every clip's frame images, upscaled where the faces are
small (`face.landmarks.find_landmarks`), and writes WORD/WORD_{clip:05d}.npz beside each clip's
frames with `landmarks_crop` (float32 [T, 478, 2] in frame pixels, NaN rows where no face), the
file and key `prepare` writes and the readers load (`Reader.load_landmarks`). It reads the images
and nothing else: for `synth` data, the generator's factors in meta.json never reach the
landmarks, as with a real corpus.
"""

from __future__ import annotations

import io
import multiprocessing
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from factorflow.data.readers.base import LANDMARKS_KEY, load_image

__all__ = ["FRAME", "clip_frames", "save_npz", "write_landmarks"]

FRAME = re.compile(r"(?P<clip>.+_\d{5})_(?P<t>\d+)\.png")


def clip_frames(root: Path) -> dict[Path, list[Path]]:
    """npz path -> the clip's frame images in time order, for every clip under root/*/*/."""
    clips: dict[Path, list[tuple[int, Path]]] = {}
    for path in Path(root).glob("*/*/*.png"):
        match = FRAME.fullmatch(path.name)
        if match:
            key = path.parent / f"{match['clip']}.npz"
            clips.setdefault(key, []).append((int(match["t"]), path))
    return {key: [p for _, p in sorted(files)] for key, files in sorted(clips.items())}


def save_npz(path: str | Path, key: str, array: np.ndarray) -> None:
    """One array -> an .npz readable by np.load(path)[key], byte-stable: unlike
    np.savez_compressed it stamps no modification time, so the same input gives the same file."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(info, buf.getvalue())


def _one_clip(job: tuple[Path, list[Path]]) -> tuple[int, int]:
    from factorflow.face.landmarks import find_landmarks, found

    npz, files = job
    frames = np.stack([load_image(f) for f in files])
    landmarks = find_landmarks(frames)
    save_npz(npz, LANDMARKS_KEY, landmarks.astype(np.float32))
    return len(files), int(found(landmarks).sum())


def write_landmarks(
    root: str | Path, workers: int = 1, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Landmarks for every clip under `root` (see the module docstring) -> counts of clips,
    frames and frames with a face. `progress(n)` is called after each clip with its frames."""
    jobs = list(clip_frames(Path(root)).items())
    if not jobs:
        raise ValueError(f"{root} holds no clip frames (WORD/WORD_00001_00.png)")
    totals = {"clips": len(jobs), "frames": 0, "faces": 0}
    if workers > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            results = pool.imap(_one_clip, jobs, chunksize=4)
            for frames, faces in results:
                totals["frames"] += frames
                totals["faces"] += faces
                if progress:
                    progress(frames)
    else:
        for job in jobs:
            frames, faces = _one_clip(job)
            totals["frames"] += frames
            totals["faces"] += faces
            if progress:
                progress(frames)
    return totals
