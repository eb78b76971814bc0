"""A contact sheet for checking a prepared video by eye: source frames with their landmarks on top,
the aligned crops (with the template's five points marked) below."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from factorflow.data.video_io import UnreadableMediaError
from factorflow.face.align import template_points
from factorflow.face.landmarks import five_points

__all__ = ["CROP_ZOOM", "contact_sheet"]

CROP_ZOOM = 2


def _prepared_frames(prepared: Path, source: str) -> list[tuple[int, np.ndarray, Path]]:
    """(source frame index, landmarks [478, 2], crop PNG path) of every frame written for
    `source`, sorted by frame index."""
    frames = []
    for npz in sorted(prepared.glob("*/*/*.npz")):
        try:
            with np.load(npz) as data:
                if str(data["source"]) != source:
                    continue
                pairs = list(zip(data["frame_indices"], data["landmarks"], strict=True))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise UnreadableMediaError(
                f"cannot read landmarks {npz}: {exc} (expected the .npz `factorflow prepare` "
                "writes, with source, frame_indices and landmarks)",
                npz,
            ) from None
        for step, (index, lms) in enumerate(pairs):
            frames.append((int(index), lms, npz.with_name(f"{npz.stem}_{step:02d}.png")))
    return sorted(frames, key=lambda f: f[0])


def contact_sheet(
    source: str | os.PathLike, prepared: str | os.PathLike, count: int = 12, columns: int = 6
) -> np.ndarray:
    """RGB uint8 [H, W, 3] sheet of `count` evenly spaced frames of video `source` as prepared
    into the dataset folder `prepared` (matched by the source path stored in the npz files).

    Each cell shows the source frame with its landmarks (green; five alignment points red) and,
    below it, the aligned crop zoomed 2x with the template's five points (blue crosses).
    """
    from PIL import Image, ImageDraw

    from factorflow.data.video_io import iter_video

    written = _prepared_frames(Path(prepared), str(source))
    if not written:
        raise ValueError(f"no prepared clip of {source} in {prepared}")
    picks = [written[i] for i in np.linspace(0, len(written) - 1, count).round().astype(int)]
    wanted = {index for index, _, _ in picks}
    originals = {t: f for t, f in enumerate(iter_video(source)) if t in wanted}

    height, width = next(iter(originals.values())).shape[:2]
    crop = Image.open(picks[0][2]).size[0] * CROP_ZOOM
    cell_w, cell_h = max(width, crop) + 4, height + crop + 8
    rows = -(-len(picks) // columns)
    sheet = Image.new("RGB", (cell_w * min(columns, len(picks)), cell_h * rows), "white")
    draw = ImageDraw.Draw(sheet)
    marks = (template_points(crop // CROP_ZOOM) + 0.5) * CROP_ZOOM
    for cell, (index, lms, png) in enumerate(picks):
        x0, y0 = (cell % columns) * cell_w, (cell // columns) * cell_h
        sheet.paste(Image.fromarray(originals[index]), (x0, y0))
        for x, y in lms:
            draw.point((x0 + x, y0 + y), fill=(0, 255, 0))
        for x, y in five_points(lms):
            draw.ellipse((x0 + x - 2, y0 + y - 2, x0 + x + 2, y0 + y + 2), outline=(255, 0, 0))
        cx, cy = x0 + (width - crop) // 2, y0 + height + 4
        zoomed = Image.open(png).convert("RGB").resize((crop, crop), Image.Resampling.NEAREST)
        sheet.paste(zoomed, (cx, cy))
        for x, y in marks:
            draw.line((cx + x - 3, cy + y, cx + x + 3, cy + y), fill=(0, 128, 255))
            draw.line((cx + x, cy + y - 3, cx + x, cy + y + 3), fill=(0, 128, 255))
    return np.asarray(sheet)
