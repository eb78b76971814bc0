"""Planning a synthetic dataset (every factor drawn from the seed) and writing it to disk.

Randomness is keyed, not sequential: speaker i draws from SeedSequence([seed, 0, i]) and its
repetition r of word w from [seed, 1, i, w, r], with w the word's index in VOCABULARY. So a dataset
does not depend on the number of workers, and growing --speakers or --words keeps the existing
speakers and clips as they were.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from factorflow.data.landmarks import save_npz, write_landmarks
from factorflow.data.synth.factors import Identity, sample_identity, sample_lighting, sample_pose
from factorflow.data.synth.meta import (
    FPS,
    SPLITS,
    ClipMeta,
    SpeakerMeta,
    SynthMeta,
    frame_path,
    mask_path,
)
from factorflow.data.synth.render import check_size, render_clip
from factorflow.data.synth.words import VOCABULARY, sample_style, word_trajectory
from factorflow.io import OutputExistsError, atomic_dir, has_content

__all__ = [
    "MAX_FRAMES",
    "check_disk",
    "check_frames",
    "default_test_speakers",
    "generate",
    "plan",
    "save_masks",
]

log = logging.getLogger(__name__)


# Frames per clip: a clip is rendered whole in memory (about 40 bytes per pixel at 64x64).
MAX_FRAMES = 1000


def check_frames(frames: int) -> None:
    if not 1 <= frames <= MAX_FRAMES:
        raise ValueError(
            f"frames={frames}: expected 1..{MAX_FRAMES} per clip (a clip is rendered in memory; "
            f"{MAX_FRAMES} frames are {MAX_FRAMES // 25} s at 25 fps)"
        )


def check_disk(out: Path, n_frames: int, size: int) -> None:
    """Refuse a dataset that cannot fit on the output's disk (PNG frames + masks: ~1.2 bytes per
    pixel, a low estimate), before anything is rendered."""
    need = int(n_frames * size * size * 1.2)
    folder = next(p for p in (out, *out.parents) if p.exists())
    free = shutil.disk_usage(folder).free
    if need > free:
        raise ValueError(
            f"output {out}: {n_frames} frames of {size}x{size} need about {need / 1e9:.1f} GB, "
            f"but {free / 1e9:.1f} GB are free there (fewer --speakers, --words or --frames)"
        )


def default_test_speakers(speakers: int) -> int:
    """20% of the speakers, at least 2."""
    return max(2, round(0.2 * speakers))


def plan(
    size: int = 64,
    frames: int = 16,
    speakers: int = 40,
    words: int = 10,
    clips_per_pair: int = 2,
    seed: int = 0,
    test_speakers: int | None = None,
    val_fraction: float = 0.1,
) -> SynthMeta:
    """Draw every factor of a dataset without rendering it -> SynthMeta (root None).

    Speakers are S000, S001, ...; the last `test_speakers` are held out (split "test"). Each
    (speaker, word) pair says the word `clips_per_pair` times. Of each word's training-speaker
    clips, round(val_fraction * n) (at least one when val_fraction > 0) go to "val". Clip indices
    count from 0 per (split, word), in (speaker, repetition) order.
    """
    check_size(size)
    check_frames(frames)
    n_test = default_test_speakers(speakers) if test_speakers is None else test_speakers
    checks = [
        (
            1 <= words <= len(VOCABULARY),
            f"words={words}: expected 1..{len(VOCABULARY)} (the built-in vocabulary)",
        ),
        (clips_per_pair >= 1, f"clips_per_pair={clips_per_pair}: expected at least 1"),
        (n_test >= 1, f"test_speakers={n_test}: expected at least 1"),
        (
            speakers > n_test,
            f"speakers={speakers} with test_speakers={n_test}: expected at least one training "
            "speaker",
        ),
        (0.0 <= val_fraction < 1.0, f"val_fraction={val_fraction}: expected 0 <= v < 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)

    width = max(3, len(str(speakers - 1)))
    ids = [f"S{i:0{width}d}" for i in range(speakers)]
    speaker_meta = {}
    for i, sid in enumerate(ids):
        rng = np.random.default_rng([seed, 0, i])
        split = "test" if i >= speakers - n_test else "train"
        speaker_meta[sid] = SpeakerMeta(split, sample_identity(rng), sample_style(rng))

    clips: list[ClipMeta] = []
    for w, word in enumerate(VOCABULARY[:words]):
        drafts: dict[str, list[tuple]] = {split: [] for split in SPLITS}
        for i, sid in enumerate(ids):
            for r in range(clips_per_pair):
                rng = np.random.default_rng([seed, 1, i, w, r])
                pose, lighting = sample_pose(rng), sample_lighting(rng)
                mouth = word_trajectory(word, speaker_meta[sid].style, rng, frames, FPS)
                home = "test" if speaker_meta[sid].split == "test" else "train"
                drafts[home].append((sid, pose, lighting, mouth))
        n_train = len(drafts["train"])
        n_val = round(val_fraction * n_train)
        if val_fraction > 0:
            n_val = min(max(n_val, 1), n_train - 1)
        to_val = set(np.random.default_rng([seed, 2, w]).permutation(n_train)[:n_val].tolist())
        drafts["val"] = [d for k, d in enumerate(drafts["train"]) if k in to_val]
        drafts["train"] = [d for k, d in enumerate(drafts["train"]) if k not in to_val]
        for split in SPLITS:
            for c, (sid, pose, lighting, mouth) in enumerate(drafts[split]):
                files = tuple(frame_path(split, word, c, t) for t in range(frames))
                clip = ClipMeta(
                    split, word, c, sid, pose, lighting, mouth, files, mask_path(split, word, c)
                )
                clips.append(clip)
    clips.sort(key=lambda c: (SPLITS.index(c.split), c.word, c.clip))
    settings = {
        "speakers": speakers,
        "words": words,
        "clips_per_pair": clips_per_pair,
        "test_speakers": n_test,
        "val_fraction": val_fraction,
    }
    return SynthMeta(size, frames, seed, sorted(VOCABULARY[:words]), speaker_meta, clips, settings)


def generate(
    out_dir: str | os.PathLike,
    size: int = 64,
    frames: int = 16,
    speakers: int = 40,
    words: int = 10,
    clips_per_pair: int = 2,
    seed: int = 0,
    test_speakers: int | None = None,
    val_fraction: float = 0.1,
    overwrite: bool = False,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    landmarks: bool = False,
) -> dict[str, Any]:
    """Render and write a dataset (layout in the package docstring) -> summary dict.

    `landmarks`: also run the face tool on the written frames (`data.landmarks`: from the
    pixels alone, upscaled for MediaPipe) and store each clip's landmarks beside its frames, as
    `prepare` does for real video; the summary then counts the frames with a face found.

    The dataset is written to a hidden temporary folder beside `out_dir` and renamed into place,
    so `out_dir` is either absent, as it was, or complete. `progress(n)` is called after each clip
    with its number of frames. Same arguments -> byte-identical files, whatever `workers`.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out}: exists and is not a folder")
    if has_content(out) and not overwrite:
        raise OutputExistsError(
            f"output {out}: folder is not empty (pass --force to replace it, or choose another)"
        )
    check_frames(frames)
    check_disk(out.absolute(), speakers * words * clips_per_pair * frames, size)
    meta = plan(size, frames, speakers, words, clips_per_pair, seed, test_speakers, val_fraction)
    start = time.perf_counter()
    with atomic_dir(out, replace=overwrite) as tmp:
        jobs = [(meta.identity(c.speaker), c, size, str(tmp)) for c in meta.all_clips]
        if workers > 1:
            # fork where there is one: spawn would re-import the caller's main module, which
            # breaks scripts without an `if __name__ == "__main__"` guard.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            with multiprocessing.get_context(method).Pool(workers) as pool:
                for n in pool.imap_unordered(_write_clip, jobs, chunksize=4):
                    if progress:
                        progress(n)
        else:
            for job in jobs:
                n = _write_clip(job)
                if progress:
                    progress(n)
        found = write_landmarks(tmp, workers, progress) if landmarks else None
        (tmp / "meta.json").write_text(meta.to_json())
    seconds = time.perf_counter() - start
    n_frames = len(meta.all_clips) * frames
    log.debug("wrote %d frames to %s in %.1f s", n_frames, out, seconds)
    return {
        "out": str(out),
        "size": size,
        "frames": n_frames,
        "clips": {s: len(meta.clips(s)) for s in SPLITS},
        "speakers": {
            s: sum(m.split == s for m in meta.speakers.values()) for s in ("train", "test")
        },
        "words": len(meta.words),
        **({"landmarks": found} if found is not None else {}),
        "seconds": seconds,
        "frames_per_second": n_frames / max(seconds, 1e-9),
    }


def _write_clip(job: tuple[Identity, ClipMeta, int, str]) -> int:
    identity, clip, size, root = job
    frames, masks = render_clip(identity, clip.pose, clip.lighting, clip.mouth, size)
    folder = Path(root, clip.files[0]).parent
    folder.mkdir(parents=True, exist_ok=True)
    for rel, frame in zip(clip.files, frames, strict=True):
        Image.fromarray(frame).save(Path(root, rel), format="PNG")
    mask_file = Path(root, clip.mask)
    mask_file.parent.mkdir(parents=True, exist_ok=True)
    save_masks(mask_file, masks)
    return len(frames)


def save_masks(path: str | os.PathLike, masks: np.ndarray) -> None:
    """masks uint8 [T,H,W] -> an .npz readable by np.load(path)["masks"], byte-stable."""
    save_npz(path, "masks", masks)
