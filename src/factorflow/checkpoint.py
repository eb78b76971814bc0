"""Checkpoints as safetensors + JSON. Loading never unpickles: a stranger's checkpoint runs no code.

Layout of one checkpoint (a folder, written under a temporary name and renamed when complete):

    RUN_DIR/checkpoints/step_00001000/
        model.safetensors      model parameters and buffers (ActNorm's `initialized` flag included)
        optimizer.safetensors  optimizer tensors and the torch RNG states
        state.json             format, package version, step, resolved config, optimizer settings,
                               python/numpy RNG states, metrics
    RUN_DIR/checkpoints/best.json   {"step": ..., "metric": ..., "value": ...}
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import factorflow
from factorflow.io import atomic_write_text, fsync_dir

FORMAT = "factorflow-checkpoint/1"
STEP_PREFIX = "step_"


@dataclass
class Checkpoint:
    path: Path
    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]

    @property
    def step(self) -> int:
        return int(self.state["step"])

    @property
    def config(self) -> dict[str, Any]:
        return self.state["config"]


def _step_dirs(ckpt_dir: Path) -> list[Path]:
    dirs = [p for p in ckpt_dir.glob(f"{STEP_PREFIX}*") if (p / "state.json").is_file()]
    return sorted(dirs, key=lambda p: int(p.name[len(STEP_PREFIX) :]))


def resolve(path: str | Path, prefer_best: bool = False) -> Path:
    """A run folder, its checkpoints/ folder or one step folder -> the step folder to load."""
    path = Path(path)
    if (path / "state.json").is_file():
        return path
    ckpt_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not ckpt_dir.is_dir():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    best = ckpt_dir / "best.json"
    if prefer_best and best.is_file():
        step_dir = ckpt_dir / f"{STEP_PREFIX}{json.loads(best.read_text())['step']:08d}"
        if (step_dir / "state.json").is_file():
            return step_dir
    dirs = _step_dirs(ckpt_dir)
    if not dirs:
        raise FileNotFoundError(f"no checkpoint in {ckpt_dir} (expected {STEP_PREFIX}NNNNNNNN/)")
    return dirs[-1]


def latest(run_dir: Path) -> Path | None:
    ckpt_dir = Path(run_dir) / "checkpoints"
    dirs = _step_dirs(ckpt_dir) if ckpt_dir.is_dir() else []
    return dirs[-1] if dirs else None


def _optimizer_to_flat(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, slots in sd["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("state."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, slots in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(slots)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    meta = {
        "python": _jsonable(random.getstate()),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    random.setstate(_tupled(meta["python"]))
    kind, keys, *rest = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))


def _jsonable(obj: Any) -> Any:
    return [_jsonable(x) for x in obj] if isinstance(obj, tuple | list) else obj


def _tupled(obj: Any) -> Any:
    return tuple(_tupled(x) for x in obj) if isinstance(obj, list) else obj


def save(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    config: dict[str, Any],
    metrics: dict[str, float] | None = None,
    keep_last: int = 3,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint `step` atomically and prune all but the last `keep_last` (and the best)."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"{STEP_PREFIX}{step:08d}"
    tmp = ckpt_dir / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    opt_tensors, opt_meta = _optimizer_to_flat(optimizer) if optimizer else ({}, None)
    rng_tensors, rng_meta = rng_state()
    save_file({**opt_tensors, **rng_tensors}, str(tmp / "optimizer.safetensors"))
    state = {
        "format": FORMAT,
        "version": factorflow.__version__,
        "step": step,
        "config": config,
        "optimizer": opt_meta,
        "rng": rng_meta,
        "metrics": metrics or {},
        **(extra or {}),
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    for f in tmp.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())
    fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    fsync_dir(ckpt_dir)
    _prune(ckpt_dir, keep_last)
    return final


def mark_best(run_dir: Path, step: int, metric: str, value: float) -> None:
    atomic_write_text(
        Path(run_dir) / "checkpoints" / "best.json",
        json.dumps({"step": step, "metric": metric, "value": value}),
    )


def best_value(run_dir: Path) -> float | None:
    path = Path(run_dir) / "checkpoints" / "best.json"
    return float(json.loads(path.read_text())["value"]) if path.is_file() else None


def _prune(ckpt_dir: Path, keep_last: int) -> None:
    best = ckpt_dir / "best.json"
    keep_step = json.loads(best.read_text())["step"] if best.is_file() else None
    for path in _step_dirs(ckpt_dir)[:-keep_last]:
        if int(path.name[len(STEP_PREFIX) :]) != keep_step:
            shutil.rmtree(path)


def load(path: str | Path, prefer_best: bool = False) -> Checkpoint:
    step_dir = resolve(path, prefer_best=prefer_best)
    try:
        state = json.loads((step_dir / "state.json").read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"checkpoint {step_dir}/state.json is not valid JSON: {exc}") from None
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {step_dir} has format {state.get('format')!r}, want {FORMAT}")
    model = load_file(str(step_dir / "model.safetensors"))
    opt_path = step_dir / "optimizer.safetensors"
    optimizer = load_file(str(opt_path)) if opt_path.is_file() else {}
    return Checkpoint(step_dir, state, model, optimizer)


def load_model_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: Path) -> None:
    """Strict load with an error that says how the checkpoint and the model differ."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]})")
        raise ValueError(
            f"checkpoint {where} does not match this model's config: " + "; ".join(parts)
        )
    model.load_state_dict(tensors, strict=True)


def restore_optimizer(
    optimizer: torch.optim.Optimizer, ckpt: Checkpoint, device: torch.device
) -> None:
    sd = _optimizer_from_flat(ckpt.optimizer, ckpt.state["optimizer"])
    optimizer.load_state_dict(sd)
    for slots in optimizer.state.values():
        for key, value in slots.items():
            if torch.is_tensor(value) and key != "step":
                slots[key] = value.to(device)


def config_diff(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys whose values differ between two config dicts, as 'section.key: saved -> current'."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{name}.")
        elif a != b:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out
