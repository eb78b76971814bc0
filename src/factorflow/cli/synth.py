"""`factorflow synth`: synthetic talking faces with ground-truth factors, in LRW frame layout."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from factorflow.data.synth import SynthMeta, contact_sheet, generate

__all__ = ["add_parser", "run"]


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (must be empty or absent)")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels (multiple of 16)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (25 fps)")
    p.add_argument("--speakers", type=int, default=40, help="number of speakers")
    p.add_argument("--words", type=int, default=10, help="number of words (built-in vocabulary)")
    p.add_argument("--clips-per-pair", type=int, default=2, help="clips per (speaker, word)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--test-speakers",
        type=int,
        default=None,
        help="held-out speakers for the test split (default: 20%% of speakers, at least 2)",
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.1, help="fraction of training clips kept for val"
    )
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument(
        "--force",
        "--overwrite",
        dest="overwrite",
        action="store_true",
        help="replace a non-empty --out (and an existing --sheet)",
    )
    p.add_argument(
        "--sheet", default=None, help="also write a contact sheet PNG (dataset size and 128 px)"
    )
    p.add_argument(
        "--landmarks",
        action="store_true",
        help="also find each frame's face landmarks (MediaPipe, from the pixels), as `prepare` "
        "stores them: the mouth flow and the landmark condition train on them",
    )


def run(args: argparse.Namespace) -> int:
    from PIL import Image
    from tqdm import tqdm

    from factorflow.io import atomic_file, check_output

    check_output(Path(args.out), args.overwrite)
    if args.sheet:
        check_output(Path(args.sheet), args.overwrite, "--sheet")

    total = args.speakers * args.words * args.clips_per_pair * args.frames
    total *= 2 if args.landmarks else 1  # the landmarks pass counts every frame again
    bars = []  # opened on the first finished clip, so that bad arguments print no bar

    def progress(n: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="frame", desc="synth", leave=False))
        bars[0].update(n)

    try:
        summary = generate(
            args.out,
            size=args.size,
            frames=args.frames,
            speakers=args.speakers,
            words=args.words,
            clips_per_pair=args.clips_per_pair,
            seed=args.seed,
            test_speakers=args.test_speakers,
            val_fraction=args.val_fraction,
            overwrite=args.overwrite,
            workers=args.workers,
            progress=progress,
            landmarks=args.landmarks,
        )
    finally:
        for bar in bars:
            bar.close()
    if args.sheet:
        meta = SynthMeta.load(args.out)
        sizes = sorted({meta.size, 128})
        sheet = Image.fromarray(contact_sheet(meta, sizes=sizes))
        with atomic_file(args.sheet) as tmp:
            sheet.save(tmp, format="PNG")
    clips = summary["clips"]
    print(
        f"wrote {summary['frames']} frames ({clips['train']} train, {clips['val']} val, "
        f"{clips['test']} test clips; {summary['speakers']['train']}+{summary['speakers']['test']} "
        f"speakers, {summary['words']} words, {summary['size']} px) to {summary['out']} "
        f"in {summary['seconds']:.1f} s ({summary['frames_per_second']:.0f} frames/s)"
        + (
            f"; a face found in {summary['landmarks']['faces']} of them"
            if "landmarks" in summary
            else ""
        )
        + (f"; sheet {args.sheet}" if args.sheet else "")
    )
    return 0
