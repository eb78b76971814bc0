"""The GRID corpus: ROOT/s{N}/NAME.{mpg,mp4} sentence videos with word alignments.

Alignments are looked for at ROOT/s{N}/align/NAME.align, ROOT/align/s{N}/NAME.align or
ROOT/alignments/s{N}/NAME.align. Each line is "start end word" with times in units of 1/25000 s,
so one 25 fps video frame spans 1000 units; "sil" and "sp" mark silence.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from factorflow.data.readers.base import ClipRef, Reader

__all__ = [
    "GRID_VIDEO_EXTENSIONS",
    "SILENCE",
    "SPEAKER_DIR",
    "UNITS_PER_FRAME",
    "AlignedWord",
    "GridReader",
    "find_align",
    "read_align",
    "speaker_dirs",
]

logger = logging.getLogger(__name__)

GRID_VIDEO_EXTENSIONS = (".mpg", ".mpeg", ".mp4")
SILENCE = frozenset({"sil", "sp"})
UNITS_PER_FRAME = 1000
SPEAKER_DIR = re.compile(r"^s\d+$")


@dataclass(frozen=True)
class AlignedWord:
    """A spoken word and its video frames [start, stop)."""

    word: str
    start: int
    stop: int


def read_align(path: str | os.PathLike) -> list[AlignedWord]:
    """Parse a GRID .align file into its spoken words (silence dropped), in order."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not a text .align file (undecodable byte at offset {exc.start}; expected "
            "lines of 'start end word')"
        ) from None
    words = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        try:
            start, end, word = int(fields[0]), int(fields[1]), fields[2]
        except (IndexError, ValueError) as exc:
            raise ValueError(
                f"{path}:{number}: expected 'start end word', got {line.strip()!r}"
            ) from exc
        if word.lower() in SILENCE:
            continue
        first = start // UNITS_PER_FRAME
        words.append(AlignedWord(word, first, max(first + 1, math.ceil(end / UNITS_PER_FRAME))))
    return words


def find_align(root: Path, speaker: str, name: str) -> Path | None:
    """The alignment file of video `name` of `speaker`, in any of GRID's usual places."""
    for folder in (
        root / speaker / "align",
        root / "align" / speaker,
        root / "alignments" / speaker,
    ):
        path = folder / f"{name}.align"
        if path.is_file():
            return path
    return None


def speaker_dirs(root: Path) -> list[Path]:
    """The s{N} folders of a GRID root, in sorted order."""
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(Path(e.path) for e in entries if e.is_dir() and SPEAKER_DIR.match(e.name))


def _videos(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return sorted(
            Path(e.path)
            for e in entries
            if e.is_file() and Path(e.name).suffix.lower() in GRID_VIDEO_EXTENSIONS
        )


class GridReader(Reader):
    """GRID as per-word clips (`mode="words"`) or whole sentences (`mode="sentences"`).

    Word clips hold the aligned frames of one word, or, with `clip_frames=T`, a T-frame window
    centred on the word (LRW-style context; it may run past the video's end, giving fewer frames).
    Sentence clips carry no word label. The speaker is the s{N} folder name. GRID ships no split,
    so every speaker's videos are read.
    """

    layout = "grid"

    def __init__(
        self,
        root: str | os.PathLike,
        mode: str = "words",
        clip_frames: int | None = None,
    ) -> None:
        if mode not in ("words", "sentences"):
            raise ValueError(f"GRID mode must be 'words' or 'sentences', got {mode!r}")
        if clip_frames is not None and clip_frames < 1:
            raise ValueError(f"clip_frames must be >= 1 or None, got {clip_frames}")
        root = Path(root)
        refs = []
        for speaker_dir in speaker_dirs(root):
            speaker = speaker_dir.name
            for video in _videos(speaker_dir):
                if mode == "sentences":
                    refs.append(ClipRef(f"{speaker}/{video.stem}", str(video), speaker=speaker))
                    continue
                align = find_align(root, speaker, video.stem)
                if align is None:
                    logger.debug("no alignment for %s; its words are not indexed", video)
                    continue
                for k, aligned in enumerate(read_align(align)):
                    start, stop = aligned.start, aligned.stop
                    if clip_frames is not None:
                        start = max(0, (start + stop - clip_frames) // 2)
                        stop = start + clip_frames
                    refs.append(
                        ClipRef(
                            clip_id=f"{speaker}/{video.stem}_{k:02d}_{aligned.word}",
                            path=str(video),
                            word=aligned.word,
                            speaker=speaker,
                            start=start,
                            stop=stop,
                        )
                    )
        if not refs:
            raise ValueError(
                f"no GRID clips in {root}: expected {root}/s1/NAME.mpg videos"
                + (" with NAME.align alignment files" if mode == "words" else "")
            )
        self.mode = mode
        super().__init__(root, refs)
