"""Checkpoints as safetensors + JSON. Loading never unpickles: a stranger's checkpoint runs no code.

Layout of one checkpoint (a folder, written under a temporary name and renamed when complete):

    RUN_DIR/checkpoints/step_00001000/
        model.safetensors      model parameters and buffers (ActNorm's `initialized` flag included)
        optimizer.safetensors  optimizer tensors and the torch RNG states
        state.json             format, package version, step, resolved config, optimizer settings,
                               python/numpy RNG states, metrics, and the size and SHA-256 of
                               each safetensors file (written last: its presence means complete)
    RUN_DIR/checkpoints/best.json   {"step": ..., "metric": ..., "value": ...}

Every load verifies what it reads: state.json parses, has this format and a valid config, each
safetensors file has a whole header and the size and SHA-256 state.json records (a checkpoint
without that record, saved by an older version, is refused until `record` re-records it). A
run folder resolves to its newest intact step; each step skipped is logged with the reason.
Inference reads the model weights alone; only resume reads the optimizer file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import factorflow
from factorflow.io import atomic_dir, atomic_write_text, tmp_name

__all__ = [
    "FORMAT",
    "MODEL_FILE",
    "OPTIMIZER_FILE",
    "STEP_PREFIX",
    "Checkpoint",
    "CheckpointError",
    "best_value",
    "config_diff",
    "latest",
    "latest_intact",
    "load",
    "load_model_state",
    "mark_best",
    "problem",
    "record",
    "resolve",
    "restore_optimizer",
    "restore_rng",
    "rng_state",
    "save",
    "step_dirs",
]

log = logging.getLogger(__name__)

FORMAT = "factorflow-checkpoint/1"
STEP_PREFIX = "step_"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated or corrupt files (names the file)."""


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


def _step_number(path: Path) -> int | None:
    digits = path.name[len(STEP_PREFIX) :]
    return int(digits) if path.name.startswith(STEP_PREFIX) and digits.isdigit() else None


def step_dirs(ckpt_dir: Path) -> list[Path]:
    """Every step folder, complete or not, oldest first."""
    dirs = [p for p in ckpt_dir.glob(f"{STEP_PREFIX}*") if _step_number(p) is not None]
    return sorted((p for p in dirs if p.is_dir()), key=_step_number)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a whole safetensors file (None when its header and size agree)."""
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    if size < 8:
        return f"{path.name} is truncated ({size} bytes)"
    with open(path, "rb") as f:
        start = f.read(8)
        (n,) = struct.unpack("<Q", start)
        if n > size - 8 and f.read(1) not in (b"{", b""):  # a header is a JSON object
            guess = " (a pickle?)" if start[:1] == b"\x80" or start[:2] == b"PK" else ""
            return f"{path.name} is not a safetensors file{guess}"
        if n > size - 8:
            return f"{path.name} is truncated ({size} bytes, its header alone says {8 + n})"
        f.seek(8)
        try:
            header = json.loads(f.read(n))
            end = max(
                (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
                default=0,
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return f"{path.name} has a corrupt header"
    if size != 8 + n + end:
        return f"{path.name} is truncated or padded ({size} bytes, its header says {8 + n + end})"
    return None


def _record_hint(step_dir: Path) -> str:
    return f"if you trust its files, record them with `factorflow checkpoint --record {step_dir}`"


def _read_state(step_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(state.json's content, None), or (None, why it is not a checkpoint's state)."""
    state_path = step_dir / "state.json"
    if not state_path.is_file():
        return None, "state.json is missing (the write did not finish)"
    try:
        state = json.loads(state_path.read_text())
    except (ValueError, OSError) as exc:
        return None, f"state.json is not valid JSON ({exc})"
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else None
        return None, f"state.json has format {found!r}, expected {FORMAT!r}"
    if not isinstance(state.get("config"), dict):
        return None, "state.json holds no config (a mapping under 'config')"
    return state, None


def _recorded(files: Any, name: str) -> dict[str, Any] | None:
    """The size and SHA-256 state.json records for `name`, when it records them well."""
    want = files.get(name) if isinstance(files, dict) else None
    if isinstance(want, dict) and isinstance(want.get("bytes"), int):
        return want if isinstance(want.get("sha256"), str) else None
    return None


def _file_problem(step_dir: Path, name: str, want: dict[str, Any]) -> str | None:
    why = _safetensors_problem(step_dir / name)
    if why:
        return why
    size = (step_dir / name).stat().st_size
    if size != want["bytes"]:
        return f"{name} has {size} bytes, expected {want['bytes']}"
    if _sha256(step_dir / name) != want["sha256"]:
        return f"{name} does not match its recorded SHA-256 (the file is corrupt)"
    return None


def problem(step_dir: Path, optimizer: bool = False) -> str | None:
    """Why the checkpoint `step_dir` cannot be loaded, or None when it is intact.

    Reads state.json, and checks each safetensors file's header against its size, and its size
    and SHA-256 against those state.json records. A file without a record is refused (saved by
    an older version: `record` re-records it); only a missing optimizer file without a record
    is accepted (a shipped checkpoint carries the weights alone)."""
    state, why = _read_state(step_dir)
    if state is None:
        return why
    for name in (MODEL_FILE, OPTIMIZER_FILE) if optimizer else (MODEL_FILE,):
        want = _recorded(state.get("files"), name)
        if want is None and name == OPTIMIZER_FILE and not (step_dir / name).exists():
            continue
        if want is None:
            return f"state.json records no SHA-256 of {name}; {_record_hint(step_dir)}"
        why = _file_problem(step_dir, name, want)
        if why:
            return why
    return None


def record(step_dir: Path) -> dict[str, dict[str, Any]]:
    """Record the size and SHA-256 of each safetensors file of `step_dir` in its state.json (a
    checkpoint saved by an older version, or a shipped one) -> the record.

    Each file must be a whole safetensors file; one that no longer matches a record already
    there is refused (it is corrupt: recording it again would hide that)."""
    step_dir = Path(step_dir)
    state, why = _read_state(step_dir)
    if state is None:
        raise CheckpointError(f"checkpoint {step_dir}: {why}")
    files = {}
    for name in (MODEL_FILE, OPTIMIZER_FILE):
        path = step_dir / name
        if name == OPTIMIZER_FILE and not path.exists():
            continue
        want = _recorded(state.get("files"), name)
        why = _file_problem(step_dir, name, want) if want else _safetensors_problem(path)
        if why:
            raise CheckpointError(f"checkpoint {step_dir}: {why}")
        files[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    atomic_write_text(step_dir / "state.json", json.dumps({**state, "files": files}, indent=1))
    return files


def _newest_intact(
    ckpt_dir: Path, optimizer: bool, first: Path | None = None
) -> tuple[Path | None, str | None]:
    """(the first intact step folder, None), or (None, why the first one tried is not)."""
    candidates = step_dirs(ckpt_dir)[::-1]
    if first is not None:
        candidates = [first, *(p for p in candidates if p != first)]
    reasons = []
    for step_dir in candidates:
        why = problem(step_dir, optimizer)
        if why is None:
            return step_dir, None
        log.warning("skipping checkpoint %s: %s", step_dir, why)
        reasons.append(f"{step_dir.name}: {why}")
    return None, reasons[0] if reasons else None


def resolve(path: str | Path, prefer_best: bool = False, optimizer: bool = False) -> Path:
    """A run folder, its checkpoints/ folder or one step folder -> the step folder to load.

    A folder of steps gives its best step (prefer_best, when best.json names one) or else its
    newest, falling back to the newest intact one (logging each skipped step and why). One step
    folder given directly must be intact: CheckpointError names the file and the problem."""
    path = Path(path)
    if (path / "state.json").exists() or (path / MODEL_FILE).exists():
        why = problem(path, optimizer)
        if why:
            raise CheckpointError(f"checkpoint {path}: {why}")
        return path
    ckpt_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not ckpt_dir.is_dir():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    first = None
    best = ckpt_dir / "best.json"
    if prefer_best and best.is_file():
        try:
            first = ckpt_dir / f"{STEP_PREFIX}{int(json.loads(best.read_text())['step']):08d}"
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s: %s", best, exc)
        if first is not None and not first.is_dir():
            first = None
    dirs = step_dirs(ckpt_dir)
    if not dirs:
        raise FileNotFoundError(f"no checkpoint in {ckpt_dir} (expected {STEP_PREFIX}NNNNNNNN/)")
    found, why = _newest_intact(ckpt_dir, optimizer, first)
    if found is None:
        raise CheckpointError(
            f"no intact checkpoint in {ckpt_dir}: all {len(dirs)} step folders are incomplete or "
            f"corrupt (the first tried, {why})"
        )
    return found


def latest(run_dir: Path) -> Path | None:
    """The newest step folder of a run (complete or not), or None: whether a run has begun."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    dirs = step_dirs(ckpt_dir) if ckpt_dir.is_dir() else []
    return dirs[-1] if dirs else None


def latest_intact(run_dir: Path) -> Path | None:
    """The newest step folder whose every file (optimizer included) verifies, for resuming."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    return _newest_intact(ckpt_dir, optimizer=True)[0] if ckpt_dir.is_dir() else None


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
    final = ckpt_dir / f"{STEP_PREFIX}{step:08d}"
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = _optimizer_to_flat(optimizer) if optimizer else ({}, None)
    rng_tensors, rng_meta = rng_state()
    # A step folder already there is one this run wrote and then rolled back past (or a broken
    # one resume skipped): it is replaced only once the new one is complete.
    with atomic_dir(final, replace=True) as tmp:
        files = {}
        for name, tensors in (
            (MODEL_FILE, weights),
            (OPTIMIZER_FILE, {**opt_tensors, **rng_tensors}),
        ):
            try:
                save_file(tensors, str(tmp / name))
            except SafetensorError as exc:
                raise OSError(f"cannot write {final / name}: {exc}") from None
            files[name] = {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
        state = {
            "format": FORMAT,
            "version": factorflow.__version__,
            "step": step,
            "config": config,
            "optimizer": opt_meta,
            "rng": rng_meta,
            "metrics": metrics or {},
            "files": files,
            **(extra or {}),
        }
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
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
    """Delete old steps. A step that cannot be deleted is logged and left: training goes on."""
    best = ckpt_dir / "best.json"
    try:
        keep_step = int(json.loads(best.read_text())["step"]) if best.is_file() else None
    except (ValueError, KeyError, TypeError, OSError):
        keep_step = None
    for path in step_dirs(ckpt_dir)[:-keep_last]:
        if _step_number(path) == keep_step:
            continue
        # Renamed first, so a failed delete leaves a hidden folder, never a half-deleted step.
        trash = tmp_name(path, suffix=False)
        try:
            os.replace(path, trash)
            shutil.rmtree(trash)
        except OSError as exc:
            log.warning("could not delete old checkpoint %s: %s", path, exc)


def load(path: str | Path, prefer_best: bool = False, optimizer: bool = False) -> Checkpoint:
    """Read a verified checkpoint: the model weights, and the optimizer file when `optimizer`
    (resume). Raises CheckpointError naming the file when nothing intact is found."""
    from factorflow.config import from_dict

    step_dir = resolve(path, prefer_best=prefer_best, optimizer=optimizer)
    state = json.loads((step_dir / "state.json").read_text())
    try:
        from_dict(state["config"])
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {step_dir}: its state.json's config: {exc}") from None
    model = _read_tensors(step_dir / MODEL_FILE)
    opt_path = step_dir / OPTIMIZER_FILE
    opt = _read_tensors(opt_path) if optimizer and opt_path.is_file() else {}
    return Checkpoint(step_dir, state, model, opt)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint file {path}: {exc}") from None


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
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(
            f"checkpoint {where} holds non-finite weights ({len(bad)} tensors, e.g. {bad[0]}): "
            "the run diverged or the file was damaged before it was recorded; use an earlier "
            "checkpoint or retrain"
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
