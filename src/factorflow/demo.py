"""The main job on the built-in default (`factorflow demo`, `make demo`).

1. Synthetic talking faces (64x64, held-out test speakers), the benchmark with ground truth.
2. The AF model: the checkpoint the project trained and ships (`assets/demo-af`, reproduced by
   `factorflow demo --train`), or a fresh training run with `--train`.
3. `evaluate` against every baseline; a GIF of reenactments of held-out speakers.
4. A real-video reenactment (a real talking clip driving real faces never trained on) with the
   shipped mouth flow (`assets/mouthflow`).
5. An HTML report collecting all of it: runs/demo/index.html.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from factorflow.config import Config, load_config
from factorflow.io import OutputExistsError, atomic_dir, has_content
from factorflow.models import load
from factorflow.models.base import FlowModel

__all__ = [
    "ASSETS",
    "OUTPUTS",
    "SYNTH",
    "TRAIN_OVERRIDES",
    "DemoResult",
    "check_out",
    "demo_model",
    "heldout_gif",
    "run_demo",
    "ship",
    "synth_data",
]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
SYNTH = {"size": 64, "frames": 16, "speakers": 30, "words": 8, "clips_per_pair": 2, "seed": 0}
# The recipe of the shipped checkpoint (`factorflow demo --train` reproduces it): stage 1 trains
# the Glow for 3000 steps of 16 frames, stage 2 the AF for 1500 steps of 4 clips.
TRAIN_OVERRIDES = [
    "model=af",
    "af.stage1_steps=3000",
    "af.stage1_batch_size=16",
    "data.batch_size=4",
    "train.max_steps=1500",
    "train.val_every=250",
    "train.ckpt_every=250",
    "train.sample_every=500",
]


@dataclass
class DemoResult:
    out: Path
    report: dict[str, Any]
    artifacts: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


# What a demo folder holds: a rerun may rewrite these; anything else in --out is not the demo's.
OUTPUTS = ("data", "run", "eval", "real", "index.html", "reenact_heldout.gif", "loss_curves.png")


def check_out(out: Path, force: bool = False) -> None:
    """Refuse an --out that holds anything a demo did not write (unless `force`)."""
    if not out.is_dir():
        if out.exists():
            raise OutputExistsError(f"--out {out} is a file, expected a folder")
        return
    other = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS and ".tmp-" not in p.name)
    if other and not force:
        raise OutputExistsError(
            f"--out {out} holds {len(other)} entries a demo did not write (e.g. {other[0]}): "
            "choose another --out, or pass --force to write the demo among them"
        )


def synth_data(out: Path, force: bool = False) -> Path:
    """The demo's synthetic dataset, generated once (deterministic from its settings). Another
    dataset at `out` is replaced only with `force`."""
    from factorflow.data.synth import generate

    meta = out / "meta.json"
    if meta.is_file():
        try:
            found = json.loads(meta.read_text())
        except (OSError, ValueError):
            found = {}
        found = found if isinstance(found, dict) else {}
        settings = found.get("settings") if isinstance(found.get("settings"), dict) else {}
        theirs = {k: settings.get(k, found.get(k)) for k in SYNTH}
        if theirs == SYNTH:
            return out
        if not force:
            raise OutputExistsError(
                f"{out} holds another dataset ({theirs}), not the demo's ({SYNTH}): choose another "
                "--out, or pass --force to replace it"
            )
    elif has_content(out) and not force:
        raise OutputExistsError(
            f"{out} exists and is not the demo's dataset (no meta.json): choose another --out, "
            "or pass --force to replace it"
        )
    generate(out, **SYNTH, workers=2, overwrite=force)
    return out


def demo_model(
    out: Path, data: Path, train: bool, progress: bool
) -> tuple[FlowModel, Config, Path]:
    """The shipped AF checkpoint, or one trained now (`train=True` or nothing shipped)."""
    shipped = ASSETS / "demo-af"
    if not train and shipped.is_dir():
        model, config = load(shipped)
        return model, config, shipped
    from factorflow.engine.pipeline import run_training

    config = load_config("cpu-small", TRAIN_OVERRIDES)
    run = out / "run"
    result = run_training(config, data, run, resume=run.is_dir(), progress=progress)
    model, config = load(result.run_dir)
    return model, config, run


def ship(run: Path, dest: Path) -> Path:
    """Copy a run's last checkpoint (weights + state, no optimizer) and its training logs into
    `dest`, the folder `demo` loads (`factorflow demo --train --ship` refreshes assets/demo-af)."""
    from factorflow import checkpoint as ckpt

    step = ckpt.resolve(run)  # the final step: the one evaluated (val objective is no proxy)
    with atomic_dir(dest, replace=True) as tmp:
        for name in ("model.safetensors", "state.json"):
            shutil.copy2(step / name, tmp / name)
        ckpt.record(tmp)  # the weights alone: the record no longer lists the optimizer file
        for sub in ("", "stage1"):
            if (run / sub / "metrics.jsonl").is_file():
                (tmp / sub).mkdir(exist_ok=True)
                shutil.copy2(run / sub / "metrics.jsonl", tmp / sub / "metrics.jsonl")
    return dest


def heldout_gif(model: FlowModel, data: Path, out: Path, targets: int = 4, scale: int = 2) -> Path:
    """GIF: a held-out driver (left) drives `targets` held-out faces; rows: truth, then model."""
    from factorflow.data.synth import SynthMeta
    from factorflow.reenact.media import write_clip

    meta = SynthMeta.load(data)
    clips = meta.clips("test")
    driver = clips[0]
    chosen, seen = [], {driver.speaker}
    for clip in clips:
        if clip.speaker not in seen and len(chosen) < targets:
            chosen.append(clip)
            seen.add(clip.speaker)
    d = torch.from_numpy(meta.frames(driver)).permute(0, 3, 1, 2)
    rows_truth, rows_model = [], []
    for clip in chosen:
        truth, _ = meta.render_reenactment(clip, driver)
        t = torch.from_numpy(meta.frames(clip)).permute(0, 3, 1, 2)
        out_frames = model.reenact(d.to(model.device), t.to(model.device)).cpu()
        rows_truth.append(truth)
        rows_model.append(out_frames.permute(0, 2, 3, 1).numpy())
    drv = d.permute(0, 2, 3, 1).numpy()
    blank = np.full_like(drv, 255)
    top = np.concatenate([drv, *rows_truth], axis=2)
    bottom = np.concatenate([blank, *rows_model], axis=2)
    frames = np.concatenate([top, bottom], axis=1)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    return write_clip(out, frames, fps=8)


def run_demo(
    out: Path,
    train: bool = False,
    pairs: int = 24,
    progress: bool = True,
    ship_to: Path | None = None,
    force: bool = False,
) -> DemoResult:
    """`ship_to` (needs `train`): copy the trained checkpoint there (assets/demo-af refreshes the
    one the package ships). `force`: write into an --out holding other files, and replace a
    dataset at out/data that is not the demo's."""
    from factorflow.metrics.evaluate import evaluate
    from factorflow.report import write_report

    start = time.time()
    out = Path(out)
    if ship_to is not None and not train:
        raise ValueError("--ship stores a newly trained checkpoint: it needs --train")
    if pairs < 1:
        raise ValueError(f"--pairs {pairs}: expected at least 1 (target, driver) pair")
    check_out(out, force)
    out.mkdir(parents=True, exist_ok=True)
    log.info("1/5 synthetic talking faces -> %s", out / "data")
    data = synth_data(out / "data", force)
    log.info(
        "2/5 model (%s) [%.0f s]",
        "training" if train else "shipped checkpoint",
        time.time() - start,
    )
    model, config, run = demo_model(out, data, train, progress)
    if ship_to is not None:
        ship(run, ship_to)
        log.info("shipped %s -> %s", run, ship_to)
    log.info(
        "3/5 evaluation on held-out speakers with every baseline [%.0f s]", time.time() - start
    )
    report = evaluate((model, config), data, pairs=pairs, out=out / "eval" / "report.json")
    artifacts = {
        "metrics_table": "eval/report.md",
        "contact_sheet": "eval/report.png",
        "heldout_gif": str(heldout_gif(model, data, out / "reenact_heldout.gif").name),
    }
    log.info("4/5 real-video reenactment [%.0f s]", time.time() - start)
    if (ASSETS / "mouthflow").is_dir():
        from factorflow.reenact.mouthdemo import mouth_demo

        try:
            artifacts.update(mouth_demo(out / "real"))
        except (FileNotFoundError, ImportError) as exc:
            log.warning("real-video step skipped: %s", exc)
    else:
        log.warning("no real-face model shipped (%s): real-video step skipped", ASSETS)
    log.info("5/5 report [%.0f s]", time.time() - start)
    result = DemoResult(out, report, artifacts, time.time() - start)
    write_report(out, report, artifacts, run, result.seconds)
    return result
