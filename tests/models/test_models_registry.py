"""Adding a model is one module and one registry entry: a toy model registered here trains, saves,
loads, samples and reenacts through the public commands, with no other code changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from factorflow.cli.main import main
from factorflow.config import Config, load_config
from factorflow.engine.trainer import model_sections
from factorflow.flows import Glow
from factorflow.flows.likelihood import bits_per_dim, dequantize, postprocess
from factorflow.models import MODELS, BatchRandom, FlowModel, ModelSpec, load, register
from factorflow.models.base import Batch


class ResidualGlow(FlowModel):
    """A Glow whose identity is the target's mean latent and whose motion is the driver's latent
    change from its own mean (the glow-residual baseline, as a model of its own)."""

    name = "toy-residual"

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.n_bits = config.flow.n_bits
        self.flow = Glow(config.flow)

    def _x(self, frames: Tensor, rand: BatchRandom | None = None) -> Tensor:
        return dequantize(frames.to(self.device), self.n_bits, rand)

    def initialize(self, batch: Batch) -> None:
        self.flow.initialize(self._x(batch["image"]))

    def losses(self, batch: Batch, rand: BatchRandom) -> dict[str, Tensor]:
        x = self._x(batch["image"], rand)
        return {"bpd": bits_per_dim(self.flow.log_prob(x), x[0].numel(), self.n_bits)}

    @torch.no_grad()
    def factorize(self, frames: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        zs = self.flow.encode(self._x(frames)).zs
        means = [z.mean(0, keepdim=True) for z in zs]
        return means, [z - m for z, m in zip(zs, means, strict=True)]

    def identity(self, target: Tensor) -> list[Tensor]:
        return self.factorize(target)[0]

    def motion(self, driver: Tensor) -> list[Tensor]:
        return self.factorize(driver)[1]

    @torch.no_grad()
    def render(self, identity: list[Tensor], motion: list[Tensor]) -> Tensor:
        x, _ = self.flow.inverse([s + r for s, r in zip(identity, motion, strict=True)])
        return postprocess(x, self.n_bits)


@pytest.fixture
def toy() -> Iterator[ModelSpec]:
    spec = register(ModelSpec("toy-residual", f"{__name__}:ResidualGlow", "frames"))
    yield spec
    MODELS.pop(spec.name)


def _clip(root: Path, split: str, word: str, clip: int) -> torch.Tensor:
    files = sorted((root / split / word).glob(f"{word}_{clip:05d}_*.png"))
    frames = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    return torch.from_numpy(frames).permute(0, 3, 1, 2)


def test_unregistered_model_is_an_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'toy-residual'.*'af'"):
        load_config("tiny", ["model=toy-residual"])


def test_registered_toy_model_runs_through_the_public_commands(
    toy: ModelSpec, tiny_lrw: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    common = ["--config", "tiny", "--max-steps", "4", "--no-progress"]
    train = ["train", "--data", str(tiny_lrw), "--out", str(run), "--model", toy.name, *common]
    assert main(train) == 0
    assert model_sections(load_config("tiny", [f"model={toy.name}"])) == ("model", "flow")

    model, config = load(run)
    assert isinstance(model, ResidualGlow) and config.model == toy.name
    assert not model.training and model.batch_kind == "frames" and model.image_size == 16

    grid = tmp_path / "samples.png"
    assert main(["sample", "--checkpoint", str(run), "--out", str(grid), "--n", "4"]) == 0
    pixels = np.asarray(Image.open(grid))
    assert min(pixels.shape[:2]) >= 2 * 16 and pixels.std() > 0

    out = tmp_path / "out"
    driver = tiny_lrw / "val" / "BELOW" / "BELOW_00001"
    target = tiny_lrw / "val" / "ABOUT" / "ABOUT_00000"
    reenact = ["reenact", "--checkpoint", str(run), "--driver", str(driver)]
    assert main([*reenact, "--target", str(target), "--out", str(out), "--no-align"]) == 0
    frames = sorted(out.glob("frame_*.png"))
    assert len(frames) == 8

    # Driven by itself, the residual model gives the target back exactly (at the flow's bins).
    clip = _clip(tiny_lrw, "val", "ABOUT", 0)
    same = model.reenact(clip, clip)
    assert torch.equal(same, postprocess(dequantize(clip, 5, None), 5))
    other = model.reenact(_clip(tiny_lrw, "val", "BELOW", 1), clip)
    assert not torch.equal(other, same)


def test_use_time_keys_come_from_the_entry(toy: ModelSpec, tiny_lrw: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--config", "tiny", "--max-steps", "2", "--no-progress", "--model", toy.name]
    assert main(["train", "--data", str(tiny_lrw), "--out", str(run), *args]) == 0
    with pytest.raises(ValueError, match=r"af.motion.*cannot change.*toy-residual"):
        load(run, ["af.motion=residual"])
