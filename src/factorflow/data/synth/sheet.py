"""A contact sheet of a synthetic dataset: speakers x words, and one clip frame by frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from factorflow.data.synth.meta import ClipMeta, SynthMeta
from factorflow.data.synth.render import render_frame

__all__ = ["contact_sheet"]

_WHITE = (255, 255, 255)


def contact_sheet(
    meta: SynthMeta, speakers: int = 8, words: int = 8, sizes: Sequence[int] | None = None
) -> np.ndarray:
    """-> uint8 [H, W, 3]: for each size, a panel with one row per speaker (spread over the train
    and test speakers) and one column per word showing the middle frame of the speaker's first clip
    of that word, then every frame of the clip in that grid that moves its mouth most, in rows."""
    ids = sorted(meta.speakers)
    pick = np.linspace(0, len(ids) - 1, min(speakers, len(ids))).round().astype(int)
    rows = [ids[i] for i in dict.fromkeys(pick.tolist())]
    cols = meta.words[:words]
    first: dict[tuple[str, str], ClipMeta] = {}
    for c in meta.all_clips:
        first.setdefault((c.speaker, c.word), c)
    grid = [[first[(s, w)] for w in cols if (s, w) in first] for s in rows]
    moving = max((c for row in grid for c in row), key=lambda c: float(np.ptp(c.mouth[:, 0])))
    panels = [_panel(meta, cols, grid, moving, s) for s in (sizes or [meta.size])]
    height = max(p.shape[0] for p in panels)
    padded = [
        np.pad(p, ((0, height - p.shape[0]), (0, 8), (0, 0)), constant_values=255) for p in panels
    ]
    return np.concatenate(padded, axis=1)[:, :-8]


def _panel(
    meta: SynthMeta,
    cols: list[str],
    grid: list[list[ClipMeta]],
    moving: ClipMeta,
    size: int,
) -> np.ndarray:
    header = 14
    n_cols = len(cols)
    strip = meta.frames(moving, size)
    strip_rows = -(-len(strip) // n_cols)
    height = header + size * len(grid) + header + size * strip_rows
    sheet = Image.new("RGB", (size * n_cols, height), _WHITE)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for j, word in enumerate(cols):
        draw.text((j * size + 2, 1), word, fill=(0, 0, 0), font=font)
    for i, row in enumerate(grid):
        for j, clip in enumerate(row):
            mouth = clip.mouth[len(clip.mouth) // 2]
            frame, _ = render_frame(
                meta.identity(clip.speaker), clip.pose, clip.lighting, mouth, size
            )
            sheet.paste(Image.fromarray(frame), (j * size, header + i * size))
    top = header + size * len(grid)
    label = f"{moving.speaker} says {moving.word}: frames 0-{len(strip) - 1} ({size} px)"
    draw.text((2, top + 1), label, fill=(0, 0, 0), font=font)
    for t, frame in enumerate(strip):
        r, c = divmod(t, n_cols)
        sheet.paste(Image.fromarray(frame), (c * size, top + header + r * size))
    return np.asarray(sheet)
