"""LRW-style corpora: frame folders (as written by `factorflow synth` / `prepare`) and LRW's mp4s.

Frame layout: ROOT/{split}/WORD/WORD_{clip}_{frame}.{png,jpg}, clip and frame zero-padded ints.
An optional ROOT/meta.json ({"clips": [{"split", "word", "clip", "speaker", ...}], and optionally
"words" and "speakers"}) supplies speaker labels. ROOT may also be a split folder itself (its
meta.json is then looked for beside it, in the parent).

Mp4 layout (the LRW release): ROOT/WORD/{train,val,test}/WORD_{clip}.mp4 (a .txt beside each
video holds metadata and is ignored).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

from factorflow.data.readers.base import ClipRef, Reader
from factorflow.io import IMAGE_EXTENSIONS

__all__ = ["CLIP_LABELS", "SPLITS", "LRWFramesReader", "LRWVideoReader", "has_frame_clips"]

SPLITS = ("train", "val", "test")
CLIP_LABELS = ("split", "word", "speaker")  # a meta.json clip's string fields


def _frame_pattern(word: str) -> re.Pattern[str]:
    exts = "|".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
    return re.compile(rf"^{re.escape(word)}_(\d+)_(\d+)\.(?:{exts})$", re.IGNORECASE)


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(path) if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def has_frame_clips(split_dir: Path, probe: int = 5) -> bool:
    """Whether one of the first `probe` word folders in `split_dir` holds LRW frame images."""
    for word_dir in _subdirs(split_dir)[:probe]:
        pattern = _frame_pattern(word_dir.name)
        with os.scandir(word_dir) as entries:
            if any(pattern.match(e.name) for e in entries):
                return True
    return False


def _read_meta(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc} (expected the dataset's meta.json)") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("clips", []), list):
        raise ValueError(f"{path} has no 'clips' list (expected a factorflow meta.json)")
    for key in ("words", "speakers"):
        # a list of names, or (synth) a mapping from each name to its factors
        names = meta.get(key)
        if names is not None and not (
            isinstance(names, list | dict) and all(isinstance(n, str) for n in names)
        ):
            raise ValueError(
                f"{path}: {key!r} must be a list of names (strings), got {_preview(names)} "
                "(is this meta.json from another tool?)"
            )
    for i, clip in enumerate(meta.get("clips", [])):
        bad = not isinstance(clip, dict) or not isinstance(clip.get("clip", 0), int | str)
        if not bad and "clip" in clip:
            bad = not str(clip["clip"]).isdigit()
        if bad or not all(isinstance(clip.get(k, ""), str | None) for k in CLIP_LABELS):
            raise ValueError(
                f"{path}: clips[{i}] must be an object with an integer 'clip' and string "
                f"{', '.join(repr(k) for k in CLIP_LABELS)}, got {_preview(clip)}"
            )
    return meta


def _preview(value: object, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LRWFramesReader(Reader):
    """Clips stored as frame images: ROOT/{split}/WORD/WORD_{clip}_{frame}.{png,jpg}.

    `words` is the sorted union of word folders over all splits (or meta.json's "words"), so a
    word's index is the same in every split; `speakers` likewise comes from meta.json.
    """

    layout = "lrw"

    def __init__(self, root: str | os.PathLike, split: str = "train") -> None:
        root = Path(root)
        if (root / split).is_dir():
            split_dir, dataset_root = root / split, root
        elif has_frame_clips(root):
            split_dir, dataset_root, split = root, root.parent, root.name
        else:
            raise ValueError(
                f"no LRW frame folders in {root}: expected {root}/{split}/WORD/"
                "WORD_00001_01.png (or ROOT pointing at a split folder)"
            )
        meta_path = next(
            (p for p in (root / "meta.json", dataset_root / "meta.json") if p.is_file()), None
        )
        meta = _read_meta(meta_path) if meta_path else {}
        speaker_of = {
            (c.get("split"), c.get("word"), int(c["clip"])): c.get("speaker")
            for c in meta.get("clips", [])
            if "clip" in c
        }
        refs = []
        for word_dir in _subdirs(split_dir):
            word = word_dir.name
            pattern = _frame_pattern(word)
            groups: dict[int, list[tuple[int, str]]] = defaultdict(list)
            with os.scandir(word_dir) as entries:
                for entry in entries:
                    match = pattern.match(entry.name)
                    if match:
                        groups[int(match[1])].append((int(match[2]), entry.path))
            for clip in sorted(groups):
                files = tuple(path for _, path in sorted(groups[clip]))
                refs.append(
                    ClipRef(
                        clip_id=f"{word}_{clip:05d}",
                        path=str(word_dir / f"{word}_{clip:05d}_*"),
                        word=word,
                        speaker=speaker_of.get((split, word, clip)),
                        split=split,
                        files=files,
                    )
                )
        if not refs:
            raise ValueError(
                f"no clips in {split_dir}: expected WORD/WORD_00001_01.png frame images"
            )
        words = meta.get("words")
        if words is None:
            # A split folder given directly has no known siblings; a root shows all its splits.
            scanned = {split_dir} if split_dir == root else {split_dir, *(root / s for s in SPLITS)}
            words = {d.name for folder in scanned for d in _subdirs(folder)}
        speakers = meta.get("speakers") or {s for s in speaker_of.values() if s}
        self.split = split
        self.meta_path = meta_path
        super().__init__(root, refs, words=list(words), speakers=list(speakers))


class LRWVideoReader(Reader):
    """The LRW release: ROOT/WORD/{split}/WORD_{clip}.mp4, one word per clip, no speaker labels."""

    layout = "lrw-mp4"

    def __init__(self, root: str | os.PathLike, split: str = "train") -> None:
        root = Path(root)
        refs = []
        word_dirs = _subdirs(root)
        for word_dir in word_dirs:
            word = word_dir.name
            split_dir = word_dir / split
            if not split_dir.is_dir():
                continue
            pattern = re.compile(rf"^{re.escape(word)}_(\d+)\.mp4$", re.IGNORECASE)
            found = []
            with os.scandir(split_dir) as entries:
                for entry in entries:
                    match = pattern.match(entry.name)
                    if match:
                        found.append((int(match[1]), entry.path))
            refs += [
                ClipRef(clip_id=f"{word}_{clip:05d}", path=path, word=word, split=split)
                for clip, path in sorted(found)
            ]
        if not refs:
            raise ValueError(f"no clips in {root}: expected {root}/WORD/{split}/WORD_00001.mp4")
        self.split = split
        # Every word folder counts, even one with no clip in this split, so indices match.
        super().__init__(root, refs, words=[d.name for d in word_dirs])
