"""The one seam between models and everything else (trainer, reenact, evaluate, demo).

Every model answers the same small interface, so adding a model means adding one module:

- `batch_kind`: "frames" (batch["image"]: single frames, uint8 [B,3,H,W]), "clips"
  (batch["frames"]: uint8 [B,T,3,H,W]) or "pairs" (two frames of one clip with their landmark
  geometry: `data.pairs`); all carry `word` and `speaker` labels (-1 if unknown).
- `initialize(batch)`: data-dependent init on one batch (ActNorm), run once before any DDP wrapping.
- `losses(batch, rand) -> dict[str, Tensor[B]]`: per-sample terms; the trainer weights them with
  `loss_weights` and reduces. Terms absent from `loss_weights` are only logged.
- `identity(target)`, `motion(driver)`, `render(identity, motion)`: reenactment. `target` and
  `driver` are uint8 [T,3,H,W]; `render` returns uint8 [T_driver,3,H,W].
- `factorize(frames) -> (s levels, r levels)`: the attribute-irrelevant and -relevant parts of
  each frame, for the leakage probes.
- `previews(batch) -> dict[str, uint8 [N,3,H,W] or [rows,cols,3,H,W]]`: images the trainer saves
  as grids.
- Controlled generation (`factorflow sample --mode ...`, `factorflow.control`), optional:
  `mouth_factor(frames) -> [T,D]` (the mouth factor of a clip's frames, flat),
  `render_mouth(face, factors) -> uint8 [N,3,H,W]` (one face with each factor as its mouth) and,
  for models with a conditional prior, `draw_mouth(face, condition, n, temperature, generator)`.
  The defaults raise NotImplementedError naming the model.

Every model is built around a flow: `self.flow` (a `flows.Glow`) over frames quantised to
`self.n_bits`. The flow-level questions (`bits_per_dim`, `sample`, `roundtrip_error`,
`plain_glow`, `image_size`) have defaults here; a model whose flow reads a condition answers
`flow_condition`. What else the code needs to know about a model is its registry entry
(`factorflow.registry`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from factorflow.flows import likelihood
from factorflow.flows.likelihood import dequantize, postprocess
from factorflow.registry import spec

__all__ = ["Batch", "BatchRandom", "FlowModel", "flatten_levels", "unflatten_levels"]

Batch = dict[str, Tensor]


def flatten_levels(levels: list[Tensor]) -> Tensor:
    """Per-level tensors [N,...] -> one flat [N,D] (levels concatenated, finest first)."""
    return torch.cat([z.flatten(1) for z in levels], 1)


def unflatten_levels(flat: Tensor, shapes: list[tuple[int, ...]]) -> list[Tensor]:
    """[N,D] -> per-level tensors [N,*shape], the inverse of `flatten_levels`."""
    sizes = [int(torch.Size(s).numel()) for s in shapes]
    if flat.shape[1] != sum(sizes):
        raise ValueError(f"expected factors of {sum(sizes)} numbers, got {flat.shape[1]}")
    parts = flat.split(sizes, 1)
    return [p.reshape(len(flat), *s) for p, s in zip(parts, shapes, strict=True)]


class BatchRandom:
    """Randomness that does not depend on how a global batch is split across processes.

    Draws are made for the global batch (`world` x the local size) from a generator seeded by
    (seed, step), and each rank keeps its own rows. One process with batch 2B and two with batch B
    therefore see the same noise, which makes DDP runs and resumed runs reproducible.
    """

    def __init__(self, generator: torch.Generator, rank: int = 0, world: int = 1) -> None:
        self.generator = generator
        self.rank = rank
        self.world = world

    @classmethod
    def seeded(cls, seed: int, device: torch.device | str = "cpu") -> BatchRandom:
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        return cls(gen)

    @property
    def device(self) -> torch.device:
        return self.generator.device

    def _local(self, full: Tensor) -> Tensor:
        return full[self.rank :: self.world]

    def rand(self, shape: tuple[int, ...]) -> Tensor:
        """U(0,1) of `shape`, shape[0] being the local batch size."""
        full = torch.rand(
            (shape[0] * self.world, *shape[1:]), generator=self.generator, device=self.device
        )
        return self._local(full)

    def randn(self, shape: tuple[int, ...]) -> Tensor:
        full = torch.randn(
            (shape[0] * self.world, *shape[1:]), generator=self.generator, device=self.device
        )
        return self._local(full)

    def randint(self, high: int, shape: tuple[int, ...]) -> Tensor:
        full = torch.randint(
            high, (shape[0] * self.world, *shape[1:]), generator=self.generator, device=self.device
        )
        return self._local(full)


class FlowModel(nn.Module, ABC):
    name: ClassVar[str]  # its registry entry
    val_metric: ClassVar[str] = "bpd"

    @property
    def batch_kind(self) -> str:
        return spec(self.name).batch_kind

    @property
    def image_size(self) -> int:
        return self.flow.config.image_size

    @property
    def frame_size(self) -> int | None:
        """The side of the frames `reenact` takes (None: frames of any size)."""
        return self.image_size

    @property
    def loss_weights(self) -> dict[str, float]:
        return {"bpd": 1.0}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, batch: Batch, rand: BatchRandom) -> dict[str, Tensor]:
        # DDP hooks gradients through forward(), so training calls go through here.
        return self.losses(batch, rand)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def data_options(self) -> dict[str, Any]:
        """Options of `engine.loader.open_split` this model's batches need beyond its
        batch kind (the pairs' crop size, for a model trained on pairs)."""
        return {}

    def load_pretrained(self) -> None:
        """Load weights named in the config (e.g. a stage-1 Glow) before a fresh run starts."""

    @abstractmethod
    def initialize(self, batch: Batch) -> None: ...

    @abstractmethod
    def losses(self, batch: Batch, rand: BatchRandom) -> dict[str, Tensor]: ...

    @abstractmethod
    def factorize(self, frames: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """uint8 frames [T,3,H,W] of one clip -> (s, r): per-level tensors [T or 1, ...]."""

    @abstractmethod
    def identity(self, target: Tensor) -> Any: ...

    @abstractmethod
    def motion(self, driver: Tensor) -> Any: ...

    @abstractmethod
    def render(self, identity: Any, motion: Any) -> Tensor: ...

    @torch.no_grad()
    def reenact(self, driver: Tensor, target: Tensor, batch_size: int = 64) -> Tensor:
        """driver uint8 [T,3,H,W], target [T',3,H,W] -> [T,3,H,W]: target's face, driver's mouth."""
        ident = self.identity(target)
        motion = self.clip_motion(driver, batch_size)
        out = [
            self.render(ident, motion(driver[i : i + batch_size]))
            for i in range(0, len(driver), batch_size)
        ]
        return torch.cat(out)

    def clip_motion(self, driver: Tensor, batch_size: int) -> Callable[[Tensor], Any]:
        """`motion` for chunks of the driver clip [T,3,H,W]; a model whose motion depends on the
        whole clip (AF's residual motion) measures the clip here first."""
        return self.motion

    def previews(self, batch: Batch) -> dict[str, Tensor]:
        return {}

    def flow_condition(self, x: Tensor) -> list[Tensor] | None:
        """The condition the flow reads for bin-centre frames x [B,3,H,W]; None: unconditional."""
        return None

    @torch.no_grad()
    def bits_per_dim(self, frames: Tensor, rand: BatchRandom | None = None) -> Tensor:
        """Discrete bits/dim [B] of uint8 frames [B,3,H,W] under the model's flow.

        `rand` draws the dequantisation noise; None evaluates at the bin centres (deterministic).
        This default serves unconditional flows; models whose flow reads a condition override it.
        """
        x = dequantize(frames.to(self.device), self.n_bits, rand)
        return likelihood.bits_per_dim(self.flow.log_prob(x), x[0].numel(), self.n_bits)

    @torch.no_grad()
    def sample(
        self, n: int, temperature: float = 0.7, generator: torch.Generator | None = None
    ) -> Tensor:
        """n uint8 frames [n,3,H,W] drawn from the flow's prior at `temperature`."""
        if not spec(self.name).can_sample:
            raise ValueError(
                f"a {self.name} model's flow needs a condition taken from a face, so it has no "
                "unconditional samples (use `factorflow reenact`)"
            )
        x = self.flow.sample(n, temperature=temperature, generator=generator)
        return postprocess(x, self.n_bits)

    @torch.no_grad()
    def roundtrip_error(self, frames: Tensor) -> tuple[float, int]:
        """Exactness of the flow on uint8 frames [B,3,H,W]: the max abs error of
        decode(encode(x)) at the bin centres, and the number of uint8 values it changes."""
        x = dequantize(frames.to(self.device), self.n_bits, None)
        cond = self.flow_condition(x)
        back, _ = self.flow.inverse(self.flow.encode(x, cond).zs, cond)
        changed = postprocess(back, self.n_bits) != postprocess(x, self.n_bits)
        return float((back - x).abs().max()), int(changed.sum())

    # -- controlled generation (optional) ---------------------------------------------------
    def mouth_factor(self, frames: Tensor) -> Tensor:
        """uint8 frames [T,3,H,W] of one clip (T=1: a still face) -> the mouth factor of each
        frame, flattened to [T,D] float. A model whose factor depends on the clip (motioncode:
        codes against the clip's mean frame) measures the clip as a whole."""
        raise NotImplementedError(f"a {self.name} model has no mouth factor to control")

    def render_mouth(self, face: Tensor, factors: Tensor) -> Tensor:
        """One face uint8 [3,H,W] and factors [N,D] (as `mouth_factor` gives) -> uint8 frames
        [N,3,H,W]: the face with each factor as its mouth, the rest of the face kept. The face's
        own factor (`mouth_factor(face[None])`) gives the face back, up to the flow's rounding."""
        raise NotImplementedError(f"a {self.name} model cannot render a face with a given mouth")

    def draw_mouth(
        self,
        face: Tensor,
        condition: Tensor,
        n: int,
        temperature: float = 0.7,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Models with a conditional prior: n draws uint8 [n,3,H,W] of the face uint8 [3,H,W] with
        its mouth drawn from the prior given the condition read from another frame [3,H,W]."""
        raise NotImplementedError(f"a {self.name} model has no conditional prior to draw from")

    def plain_glow(self) -> FlowModel | None:
        """A plain Glow model running this model's own flow (the glow-* baselines), or None when
        it has none a plain Glow can run (its flow needs a condition)."""
        return None
