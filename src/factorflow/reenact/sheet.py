"""Contact sheet of the mouth region: driver | target | output at the driver's most open frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factorflow.face.align import warp
from factorflow.face.warp import crop_matrix, face_axes

__all__ = ["SIDE_IOD", "contact_sheet", "mouth_crop"]

SIDE_IOD = 1.3


def mouth_crop(frame: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """An upright square crop about the mouth, SIDE_IOD inter-ocular distances wide."""
    centre, u, iod = face_axes(landmarks)
    v = np.array([-u[1], u[0]])
    return warp(frame, crop_matrix(centre + 0.1 * iod * v, u, SIDE_IOD * iod, size), size)


def contact_sheet(rows: list[dict], out: Path, size: int = 128) -> Path:
    """rows from `reenact_mouth(sheet_frames=...)`; columns driver | target | output."""
    from factorflow.images import save_png

    if not rows:
        raise ValueError("no frames for the contact sheet")
    lines = []
    for row in sorted(rows, key=lambda r: r["t"]):
        cells = [
            mouth_crop(row["driver"], row["driver_landmarks"], size),
            mouth_crop(row["target"], row["target_landmarks"], size),
            mouth_crop(row["output"], row["target_landmarks"], size),
        ]
        gap = np.full((size, 4, 3), 255, np.uint8)
        lines.append(np.concatenate([cells[0], gap, cells[1], gap, cells[2]], 1))
        lines.append(np.full((4, lines[-1].shape[1], 3), 255, np.uint8))
    sheet = np.concatenate(lines[:-1], 0)
    save_png(sheet, out)
    return Path(out)
