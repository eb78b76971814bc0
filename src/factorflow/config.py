"""Run configuration: frozen dataclasses, strict YAML, named presets and `key=value` overrides.

A run's config is the single source of truth: it is written to RUN_DIR/config.yaml and into every
checkpoint, and it is enough to rebuild the model. Unknown keys are an error that names the key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from factorflow import registry
from factorflow.flows.glow import GlowConfig

__all__ = [
    "AT_LEAST",
    "DEVICE",
    "Config",
    "DataConfig",
    "TrainConfig",
    "from_dict",
    "get_key",
    "load_config",
    "parse_overrides",
    "preset_names",
    "replace",
    "save_config",
    "to_dict",
    "with_keys",
]


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from and how they are batched."""

    size: int = 64  # frame size fed to the model (frames of another size are an error)
    frames: int = 16  # clip length T
    layout: str = "auto"  # reader layout: auto | lrw | lrw-mp4 | grid | videos
    batch_size: int = 16  # frames per step (glow) or clips per step (af, mi, hybrid) per process
    val_batch_size: int = 16
    cache_items: int = 512  # decoded clips kept in RAM (the rest streams from disk)
    num_workers: int = 0
    init_batch: int = 64  # frames used for ActNorm's data-dependent init


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop (model-agnostic)."""

    seed: int = 0
    max_steps: int = 2000
    lr: float = 1e-3
    warmup_steps: int = 100
    grad_clip: float = 50.0
    log_every: int = 10
    val_every: int = 250
    val_batches: int = 4
    sample_every: int = 250
    ckpt_every: int = 250
    keep_last: int = 3
    nan_patience: int = 5  # non-finite steps in a row before rolling back
    nan_lr_factor: float = 0.5  # learning rate multiplier applied at each rollback
    amp: str = "auto"  # "auto" (bf16 on CUDA, off on CPU) | "bf16" | "off"
    device: str = "auto"
    tensorboard: bool = True  # when the tb extra is installed
    max_minutes: float = 0.0  # stop (with a checkpoint) after this wall time; 0 = no limit


# Bounds checked when a config is made, so that a bad value is refused at once, naming its key,
# rather than deep inside a run (a division by zero, an optimizer's complaint).
AT_LEAST = {
    **dict.fromkeys(("data.size", "data.frames", "data.batch_size", "data.val_batch_size"), 1),
    **dict.fromkeys(("data.init_batch", "train.max_steps", "train.log_every"), 1),
    **dict.fromkeys(("train.val_every", "train.val_batches", "train.sample_every"), 1),
    **dict.fromkeys(("train.ckpt_every", "train.keep_last", "train.nan_patience"), 1),
    **dict.fromkeys(("data.cache_items", "data.num_workers", "train.warmup_steps"), 0),
    "train.max_minutes": 0,
}
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _check_values(config: Any) -> None:
    for key, low in AT_LEAST.items():
        value = get_key(config, key)
        if not value >= low:  # NaN fails too
            raise ValueError(f"{key}={value!r}: expected at least {low}")
    train = config.train
    if not (math.isfinite(train.lr) and train.lr > 0):
        raise ValueError(f"train.lr={train.lr!r}: expected a finite learning rate above 0")
    if not train.grad_clip > 0:
        raise ValueError(f"train.grad_clip={train.grad_clip!r}: expected a norm above 0")
    if not 0 < train.nan_lr_factor <= 1:
        raise ValueError(f"train.nan_lr_factor={train.nan_lr_factor!r}: expected 0 < factor <= 1")
    if not DEVICE.fullmatch(train.device):
        raise ValueError(f"train.device={train.device!r}: expected auto, cpu, cuda or cuda:N")


def _check(config: Any) -> None:
    registry.spec(config.model)
    if config.flow.image_size != config.data.size:
        raise ValueError(
            f"flow.image_size ({config.flow.image_size}) must equal data.size ({config.data.size})"
        )
    _check_values(config)


def _section(cls: type) -> Any:
    return field(default_factory=cls)


# The run config: the model's name, the flow, data and training, and one section per entry of
# `models.registry.SECTIONS` (af, mi, ...), so a model's own section is declared with the model.
Config = dataclasses.make_dataclass(
    "Config",
    [
        ("model", str, field(default="glow")),
        ("flow", GlowConfig, _section(GlowConfig)),
        ("data", DataConfig, _section(DataConfig)),
        ("train", TrainConfig, _section(TrainConfig)),
        *[(name, cls, _section(cls)) for name, cls in registry.section_classes().items()],
    ],
    frozen=True,
    namespace={"__post_init__": _check, "__module__": __name__},
)


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"config section {where or '<root>'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ValueError(f"unknown config key {key!r} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        path = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _from_dict(hint, value, path)
        else:
            kwargs[name] = _coerce(value, hint, path)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a section's own check names its class: name the config key
        raise ValueError(str(exc).replace(f"{cls.__name__}.", f"{where}.")) from None


def _coerce(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"config key {path!r} expects true/false, got {value!r}")
    if hint in (int, float):
        try:
            number = hint(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(
                f"config key {path!r} expects {hint.__name__}, got {value!r}"
            ) from None
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"config key {path!r} expects an integer, got {value!r}")
        if hint is float and math.isnan(number):
            raise ValueError(f"config key {path!r} expects a number, got {value!r}")
        return number
    if hint is str:
        return str(value)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(data: dict[str, Any]) -> Config:
    return _from_dict(Config, data, "")


def preset_names() -> list[str]:
    files = resources.files("factorflow.presets").iterdir()
    return sorted(p.name[: -len(".yaml")] for p in files if p.name.endswith(".yaml"))


def _load_yaml(source: str) -> dict[str, Any]:
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"config file {source} does not exist")
        text = path.read_text()
    elif source in preset_names():
        text = resources.files("factorflow.presets").joinpath(f"{source}.yaml").read_text()
    else:
        raise ValueError(
            f"unknown preset {source!r}: choose one of {preset_names()} or a YAML file"
        )
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"config {source} is not valid YAML{where}: {first}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config {source} must hold a mapping at the top level")
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["train.lr=1e-4", "flow.levels=3"]` -> nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like section.key=value")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part!r} is set to a value, not a section")
        if not all(parts):
            raise ValueError(f"override {item!r}: empty key part in {key!r}")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ValueError(f"override {item!r}: cannot parse the value {raw!r}") from None
    return out


def load_config(
    source: str = "cpu-small", overrides: list[str] | dict[str, Any] | None = None
) -> Config:
    """A preset or YAML file, then overrides (overriding `flow.image_size` sets `data.size`)."""
    data = _load_yaml(source)
    extra: dict[str, Any] = {}
    if overrides:
        extra = parse_overrides(overrides) if isinstance(overrides, list) else overrides
    flow_size = extra.get("flow", {}).get("image_size")
    if flow_size is not None and "size" not in extra.get("data", {}):
        extra = _merge(extra, {"data": {"size": flow_size}})
    return from_dict(_merge(data, extra))


def replace(config: Config, **sections: Any) -> Config:
    """A copy of `config` with some keys of some sections changed, validated like a load."""
    return from_dict(_merge(to_dict(config), sections))


def get_key(config: Config, key: str) -> Any:
    """The value of a dotted key ("af.motion") in `config`."""
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def with_keys(config: Config, keys: dict[str, Any]) -> Config:
    """A copy of `config` with dotted keys ({"af.num_words": 8}) set to values as given."""
    nested: dict[str, Any] = {}
    for key, value in keys.items():
        *sections, last = key.split(".")
        node = nested
        for part in sections:
            node = node.setdefault(part, {})
        node[last] = value
    return replace(config, **nested)


def save_config(config: Config, path: Path) -> None:
    from factorflow.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
