"""Multi-scale Glow (Kingma & Dhariwal 2018) with optional per-level conditions (MI-flow).

Level ``l`` (0-based index into ``zs``/``cond``, finest first): squeeze 2x2, ``K`` steps of
(ActNorm, invertible 1x1 conv, coupling), then, except on the last level, a split: the first half
of the channels (the *kept* half) goes on to level ``l + 1``, the second half is the latent
``z_l``. The prior of ``z_l`` is a Gaussian whose (mean, logstd) is a zero-initialised conv3x3 of
the kept half and/or of the condition ``cond[l]``; the last latent has the top prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from factorflow.flows.actnorm import ActNorm
from factorflow.flows.base import Bijection, FlowSequence, zero_logdet
from factorflow.flows.coupling import AdditiveCoupling, AffineCoupling
from factorflow.flows.invconv import InvConv1x1, InvConv1x1LU
from factorflow.flows.prior import GaussianPrior, gaussian_log_prob, gaussian_sample
from factorflow.flows.recompute import recompute
from factorflow.flows.squeeze import Squeeze

__all__ = ["Glow", "GlowConfig", "GlowEncoding"]

_COUPLINGS = {"additive": AdditiveCoupling, "affine": AffineCoupling}
_CONVS = {"lu": InvConv1x1LU, "plain": InvConv1x1}
_PRIOR_CONDS = ("kept", "cond", "kept+cond")


@dataclass(frozen=True)
class GlowConfig:
    """Everything needed to rebuild a :class:`Glow` (defaults: the thesis configuration)."""

    in_channels: int = 3
    image_size: int = 64
    levels: int = 4  # L
    steps: int = 32  # K per level
    hidden: int = 512
    coupling: str = "additive"  # "additive" | "affine"
    conv: str = "lu"  # "lu" | "plain"
    n_bits: int = 5
    learn_top: bool = True  # learned top prior vs fixed N(0, 1) (when the top prior has no input)
    cond_channels: int = (
        0  # channels of an optional per-level condition [B, cond_channels, H_l, W_l]
    )
    prior_cond: str = "kept"  # split prior input: "kept" (Glow), "cond" (MI-flow), "kept+cond"
    coupling_cond: bool = False  # feed cond[l] to every coupling net of level l
    top_cond: bool = False  # whether the top prior sees cond[L-1] (MI-flow keeps it False)
    checkpoint: bool = False  # gradient checkpointing of coupling nets
    # Invertible recomputation (flows/recompute.py): "none", "all" or level indices "0,1": those
    # levels store no activations in training and rebuild them from their output in backward.
    recompute: str = "none"

    def __post_init__(self) -> None:
        for name in ("in_channels", "image_size", "levels", "steps", "hidden", "n_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GlowConfig.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.cond_channels, int) or isinstance(self.cond_channels, bool):
            raise ValueError(
                f"GlowConfig.cond_channels must be an integer, got {self.cond_channels!r}"
            )
        if self.cond_channels < 0:
            raise ValueError(f"GlowConfig.cond_channels must be >= 0, got {self.cond_channels}")
        for name in ("learn_top", "coupling_cond", "top_cond", "checkpoint"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GlowConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if self.n_bits > 8:
            raise ValueError(f"GlowConfig.n_bits must be in 1..8, got {self.n_bits}")
        if self.image_size % 2**self.levels:
            raise ValueError(
                f"GlowConfig.image_size {self.image_size} must be divisible by "
                f"2**levels = {2**self.levels}"
            )
        if self.coupling not in _COUPLINGS:
            raise ValueError(
                f"GlowConfig.coupling must be one of {sorted(_COUPLINGS)}, got {self.coupling!r}"
            )
        if self.conv not in _CONVS:
            raise ValueError(f"GlowConfig.conv must be one of {sorted(_CONVS)}, got {self.conv!r}")
        if self.prior_cond not in _PRIOR_CONDS:
            raise ValueError(
                f"GlowConfig.prior_cond must be one of {list(_PRIOR_CONDS)}, "
                f"got {self.prior_cond!r}"
            )
        self.recompute_levels()  # validates
        uses = self.cond_consumers()
        if self.cond_channels == 0 and uses:
            raise ValueError(f"GlowConfig uses a condition ({', '.join(uses)}) but cond_channels=0")
        if self.cond_channels > 0 and not uses:
            raise ValueError(
                f"GlowConfig.cond_channels={self.cond_channels} but nothing uses the condition: "
                "set prior_cond to 'cond' or 'kept+cond' (needs levels >= 2), coupling_cond or "
                "top_cond"
            )

    def recompute_levels(self) -> frozenset[int]:
        """The levels trained with invertible recomputation (`recompute`)."""
        value = str(self.recompute).strip()
        if value == "none":
            return frozenset()
        if value == "all":
            return frozenset(range(self.levels))
        try:
            levels = frozenset(int(v) for v in value.split(","))
        except ValueError:
            levels = frozenset([-1])
        if not levels <= set(range(self.levels)):
            raise ValueError(
                f"GlowConfig.recompute must be 'none', 'all' or level indices in "
                f"0..{self.levels - 1} like '0,1', got {self.recompute!r}"
            )
        return levels

    def cond_consumers(self) -> list[str]:
        """Names of the settings that read the condition (empty for an unconditional Glow)."""
        uses = []
        if self.prior_cond != "kept" and self.levels > 1:
            uses.append(f"prior_cond={self.prior_cond!r}")
        if self.coupling_cond:
            uses.append("coupling_cond")
        if self.top_cond:
            uses.append("top_cond")
        return uses

    @property
    def latent_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of ``z_l`` per level, finest first (64x64x3, L=4: 6x32x32 ... 96x4x4)."""
        shapes = []
        channels, size = self.in_channels, self.image_size
        for level in range(self.levels):
            channels, size = channels * 4, size // 2
            if level < self.levels - 1:
                channels //= 2
                shapes.append((channels, size, size))
        shapes.append((channels, size, size))
        return shapes

    @property
    def cond_shapes(self) -> list[tuple[int, int, int]]:
        """(cond_channels, H_l, W_l) of ``cond[l]`` per level (the level's size after squeeze)."""
        return [(self.cond_channels, h, w) for _, h, w in self.latent_shapes]

    @property
    def num_dims(self) -> int:
        """Dimensions of one image, C * H * W (for bits/dim)."""
        return self.in_channels * self.image_size**2


class GlowEncoding(NamedTuple):
    """Result of :meth:`Glow.encode`.

    zs: L latents, finest first, ``zs[l]`` [B, *latent_shapes[l]].
    logdet: [B], log|det d(zs)/dx|.
    kept: L-1 kept halves, ``kept[l]`` [B, *latent_shapes[l]], the input of level l's split prior.
    """

    zs: list[Tensor]
    logdet: Tensor
    kept: list[Tensor]


class Glow(nn.Module):
    """Multi-scale Glow over images [B, in_channels, S, S] in [-0.5, 0.5].

    ``cond`` is None or a list of L tensors, ``cond[l]`` [B, cond_channels, H_l, W_l] with H_l the
    size of level l after its squeeze (:attr:`GlowConfig.cond_shapes`); entries that no part of the
    model reads (see :meth:`uses_cond`) may be None. Level indices are 0-based, finest first.
    """

    def __init__(self, config: GlowConfig) -> None:
        super().__init__()
        self.config = config
        shapes = config.latent_shapes
        num_levels = config.levels
        coupling_cls, conv_cls = _COUPLINGS[config.coupling], _CONVS[config.conv]
        coupling_cond_channels = config.cond_channels if config.coupling_cond else 0
        self.levels = nn.ModuleList()
        channels = config.in_channels
        for _ in range(num_levels):
            channels *= 4
            steps: list[Bijection] = [Squeeze()]
            for _ in range(config.steps):
                coupling = coupling_cls(
                    channels, config.hidden, coupling_cond_channels, config.checkpoint
                )
                steps.append(FlowSequence([ActNorm(channels), conv_cls(channels), coupling]))
            self.levels.append(FlowSequence(steps))
            channels //= 2
        self.split_priors = nn.ModuleList()
        for level in range(num_levels - 1):
            z_channels = shapes[level][0]
            in_channels = z_channels if config.prior_cond != "cond" else 0
            if config.prior_cond != "kept":
                in_channels += config.cond_channels
            self.split_priors.append(GaussianPrior(z_channels, in_channels))
        self.top_prior = GaussianPrior(
            shapes[-1][0], config.cond_channels if config.top_cond else 0, config.learn_top
        )

    @property
    def latent_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of each latent, finest first."""
        return self.config.latent_shapes

    def uses_cond(self, level: int) -> bool:
        """Whether any part of the model reads ``cond[level]``."""
        cfg = self.config
        top = level == cfg.levels - 1
        return cfg.coupling_cond or (cfg.top_cond if top else cfg.prior_cond != "kept")

    # ----- argument checks -------------------------------------------------------------------

    def _check_cond(self, cond: list[Tensor | None] | None, batch: int) -> None:
        cfg = self.config
        if cfg.cond_channels == 0:
            if cond is not None:
                raise ValueError("this Glow is unconditional (cond_channels=0) but got a cond list")
            return
        if cond is None or len(cond) != cfg.levels:
            got = None if cond is None else f"a list of {len(cond)}"
            raise ValueError(f"this Glow needs cond as a list of {cfg.levels} tensors, got {got}")
        for level, shape in enumerate(cfg.cond_shapes):
            c = cond[level]
            if not self.uses_cond(level):
                continue
            if c is None or tuple(c.shape) != (batch, *shape):
                got = None if c is None else tuple(c.shape)
                raise ValueError(f"cond[{level}] must have shape {(batch, *shape)}, got {got}")

    def _check_latents(self, zs: list[Tensor | None], batch: int | None, first: int) -> int:
        """Check ``zs[first:]`` are tensors of the latent shapes with one batch size; return it."""
        if len(zs) != self.config.levels:
            raise ValueError(f"expected a list of {self.config.levels} latents, got {len(zs)}")
        for level in range(first, self.config.levels):
            z, shape = zs[level], self.latent_shapes[level]
            if z is None:
                raise ValueError(f"latent zs[{level}] is required here, got None")
            if batch is None:
                batch = z.shape[0]
            if tuple(z.shape) != (batch, *shape):
                raise ValueError(
                    f"zs[{level}] must have shape {(batch, *shape)}, got {tuple(z.shape)}"
                )
        if batch is None:
            raise ValueError("cannot infer the batch size: no latent given")
        return batch

    def _level_cond(self, cond: list[Tensor | None] | None, level: int) -> Tensor | None:
        return cond[level] if cond is not None and self.config.coupling_cond else None

    def _prior_input(
        self, level: int, kept: Tensor | None, cond: list[Tensor | None] | None
    ) -> Tensor | None:
        mode = self.config.prior_cond
        if mode == "kept":
            return kept
        if mode == "cond":
            return cond[level]
        return torch.cat([kept, cond[level]], dim=1)

    def _top_params(self, batch: int, cond: list[Tensor | None] | None) -> tuple[Tensor, Tensor]:
        # Only batch size, dtype and device of ``like`` matter; an expanded scalar costs nothing.
        like = next(self.parameters()).new_empty(()).expand(batch, *self.latent_shapes[-1])
        h = cond[-1] if self.config.top_cond else None
        return self.top_prior.params(like, h)

    # ----- data -> latents --------------------------------------------------------------------

    def encode(self, x: Tensor, cond: list[Tensor | None] | None = None) -> GlowEncoding:
        """Latents, logdet and the kept halves (split-prior inputs) of ``x`` [B, C, S, S]."""
        cfg = self.config
        expected = (cfg.in_channels, cfg.image_size, cfg.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"Glow expects images [B, {expected}], got {tuple(x.shape)}")
        self._check_cond(cond, x.shape[0])
        logdet = zero_logdet(x)
        zs: list[Tensor] = []
        kept: list[Tensor] = []
        h = x
        saving = self.config.recompute_levels()
        for level, flow in enumerate(self.levels):
            c = self._level_cond(cond, level)
            h, ld = recompute(flow, h, c) if level in saving else flow(h, c)
            logdet = logdet + ld
            if level < cfg.levels - 1:
                h, z = h.chunk(2, dim=1)
                zs.append(z)
                kept.append(h)
        zs.append(h)
        return GlowEncoding(zs, logdet, kept)

    def forward(
        self, x: Tensor, cond: list[Tensor | None] | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """``x`` [B, C, S, S] in [-0.5, 0.5] -> (zs finest first, logdet [B])."""
        zs, logdet, _ = self.encode(x, cond)
        return zs, logdet

    def prior_log_prob(
        self,
        zs: list[Tensor],
        cond: list[Tensor | None] | None = None,
        kept: list[Tensor] | None = None,
    ) -> list[Tensor]:
        """log p(z_l | its prior inputs) per level, each [B], finest first.

        The kept halves are recomputed from ``zs`` (partial inverse) unless ``kept`` (as returned
        by :meth:`encode` for these ``zs``) is given or no split prior reads them.
        """
        batch = self._check_latents(zs, None, 0)
        self._check_cond(cond, batch)
        num_levels = self.config.levels
        if kept is None and self.config.prior_cond != "cond" and num_levels > 1:
            kept = self._descend(list(zs), cond, 0, 1.0, None)[1]
        terms = []
        for level in range(num_levels - 1):
            h = self._prior_input(level, kept[level] if kept is not None else None, cond)
            terms.append(self.split_priors[level].log_prob(zs[level], h))
        mean, logstd = self._top_params(batch, cond)
        terms.append(gaussian_log_prob(zs[-1], mean, logstd))
        return terms

    def prior_params(
        self,
        level: int,
        zs: list[Tensor | None],
        cond: list[Tensor | None] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """(mean, logstd), each [B, *latent_shapes[level]], of the prior of ``z_level``.

        ``zs`` is a list of L entries; those above ``level`` (which determine the kept half) must
        be tensors, the others may be None. For the top level, or split priors that read only the
        condition, the batch size is taken from any tensor in ``zs`` or ``cond``.
        """
        num_levels = self.config.levels
        if not 0 <= level < num_levels:
            raise ValueError(f"level must be in [0, {num_levels}), got {level}")
        needs_kept = level < num_levels - 1 and self.config.prior_cond != "cond"
        first = level + 1 if needs_kept else num_levels
        present = [t for t in [*zs, *(cond or [])] if t is not None]
        if not present:
            raise ValueError("prior_params needs at least one tensor in zs or cond for the batch")
        batch = self._check_latents(zs, present[0].shape[0], first)
        self._check_cond(cond, batch)
        if level == num_levels - 1:
            return self._top_params(batch, cond)
        kept = self._descend(list(zs), cond, level, 1.0, None)[1][level] if needs_kept else None
        like = present[0].new_empty(()).expand(batch, *self.latent_shapes[level])
        return self.split_priors[level].params(like, self._prior_input(level, kept, cond))

    def log_prob(self, x: Tensor, cond: list[Tensor | None] | None = None) -> Tensor:
        """Continuous log-density of ``x`` [B, C, S, S]: logdet + sum of prior terms -> [B]."""
        zs, logdet, kept = self.encode(x, cond)
        return logdet + sum(self.prior_log_prob(zs, cond, kept))

    # ----- latents -> data --------------------------------------------------------------------

    def inverse(
        self, zs: list[Tensor], cond: list[Tensor | None] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Exact decode of ``zs`` (finest first) -> (x [B, C, S, S], logdet [B] = -forward's)."""
        batch = self._check_latents(zs, None, 0)
        self._check_cond(cond, batch)
        h = zs[-1]
        logdet = zero_logdet(h)
        for level in reversed(range(self.config.levels)):
            if level < self.config.levels - 1:
                h = torch.cat([h, zs[level]], dim=1)
            h, ld = self.levels[level].inverse(h, self._level_cond(cond, level))
            logdet = logdet + ld
        return h, logdet

    def _descend(
        self,
        zs: list[Tensor | None],
        cond: list[Tensor | None] | None,
        stop: int,
        temperature: float,
        generator: torch.Generator | None,
    ) -> tuple[list[Tensor], list[Tensor | None]]:
        """Walk the split levels top-down to level ``stop``: invert each level above to get the
        kept half of the next, and draw every latent that is None from its prior.

        Returns (zs, kept) with ``kept[l]`` set for ``stop <= l < L - 1``. ``zs[-1]`` must be set.
        """
        num_levels = self.config.levels
        kept: list[Tensor | None] = [None] * (num_levels - 1)
        h = zs[-1]
        for level in range(num_levels - 2, stop - 1, -1):
            h, _ = self.levels[level + 1].inverse(h, self._level_cond(cond, level + 1))
            kept[level] = h
            if zs[level] is None:
                prior_in = self._prior_input(level, h, cond)
                mean, logstd = self.split_priors[level].params(h, prior_in)
                zs[level] = gaussian_sample(mean, logstd, temperature, generator)
            h = torch.cat([h, zs[level]], dim=1)
        return zs, kept

    def sample_latents(
        self,
        n: int,
        temperature: float = 1.0,
        cond: list[Tensor | None] | None = None,
        given: list[Tensor | None] | None = None,
        generator: torch.Generator | None = None,
    ) -> list[Tensor]:
        """Draw L latents for ``n`` samples top-down, finest first.

        A level whose ``given[l]`` is a tensor [n, *latent_shapes[l]] keeps it; the others are
        drawn from their prior (given the kept half from the levels above and/or ``cond``) at
        ``temperature`` (0 = prior mean).
        """
        return self._sample(n, temperature, cond, given, generator, decode=False)[0]

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        cond: list[Tensor | None] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``n`` images [n, C, S, S] at ``temperature``."""
        return self._sample(n, temperature, cond, None, generator, decode=True)[1]

    def _sample(
        self,
        n: int,
        temperature: float,
        cond: list[Tensor | None] | None,
        given: list[Tensor | None] | None,
        generator: torch.Generator | None,
        decode: bool,
    ) -> tuple[list[Tensor], Tensor | None]:
        num_levels = self.config.levels
        if n < 1:
            raise ValueError(f"number of samples must be >= 1, got {n}")
        zs: list[Tensor | None] = [None] * num_levels if given is None else list(given)
        if len(zs) != num_levels:
            raise ValueError(f"given must be a list of {num_levels} entries, got {len(zs)}")
        for level, z in enumerate(zs):
            if z is not None and tuple(z.shape) != (n, *self.latent_shapes[level]):
                raise ValueError(
                    f"given[{level}] must have shape {(n, *self.latent_shapes[level])}, "
                    f"got {tuple(z.shape)}"
                )
        self._check_cond(cond, n)
        if zs[-1] is None:
            mean, logstd = self._top_params(n, cond)
            zs[-1] = gaussian_sample(mean, logstd, temperature, generator)
        zs, kept = self._descend(zs, cond, 0, temperature, generator)
        if not decode:
            return zs, None
        h = zs[0] if num_levels == 1 else torch.cat([kept[0], zs[0]], dim=1)
        x, _ = self.levels[0].inverse(h, self._level_cond(cond, 0))
        return zs, x

    # ----- latents as deviations from their priors -----------------------------------------

    def standardize(self, x: Tensor, cond: list[Tensor | None] | None = None) -> list[Tensor]:
        """``x`` [B, C, S, S] -> eps_l = (z_l - mu_l) / sigma_l per level, finest first: what of
        ``x`` its priors (given the kept halves and ``cond``) do not predict."""
        zs, _, kept = self.encode(x, cond)
        eps = []
        for level in range(self.config.levels - 1):
            prior_in = self._prior_input(level, kept[level], cond)
            mean, logstd = self.split_priors[level].params(zs[level], prior_in)
            eps.append((zs[level] - mean) * torch.exp(-logstd))
        mean, logstd = self._top_params(x.shape[0], cond)
        eps.append((zs[-1] - mean) * torch.exp(-logstd))
        return eps

    def destandardize(
        self, eps: list[Tensor], cond: list[Tensor | None] | None = None, temperature: float = 1.0
    ) -> Tensor:
        """Deviations ``eps`` (as :meth:`standardize` gives, scaled by ``temperature``) about the
        priors of ``cond`` -> x [B, C, S, S]; temperature 1 inverts :meth:`standardize`."""
        batch = self._check_latents(eps, None, 0)
        self._check_cond(cond, batch)
        num_levels = self.config.levels
        mean, logstd = self._top_params(batch, cond)
        h = mean + torch.exp(logstd) * temperature * eps[-1]
        for level in range(num_levels - 2, -1, -1):
            h, _ = self.levels[level + 1].inverse(h, self._level_cond(cond, level + 1))
            mean, logstd = self.split_priors[level].params(h, self._prior_input(level, h, cond))
            h = torch.cat([h, mean + torch.exp(logstd) * temperature * eps[level]], dim=1)
        x, _ = self.levels[0].inverse(h, self._level_cond(cond, 0))
        return x

    # ----- data-dependent initialisation ------------------------------------------------------

    @torch.no_grad()
    def initialize(self, x: Tensor, cond: list[Tensor | None] | None = None) -> None:
        """Run the data-dependent ActNorm initialisation on one batch ``x`` [B, C, S, S].

        Layers already initialised (or loaded) are left alone, so calling it again is a no-op.
        Call it once before wrapping the model in DDP.
        """
        modes = [(m, m.training) for m in self.modules()]
        self.train()
        try:
            self.encode(x, cond)
        finally:
            for module, mode in modes:
                module.training = mode
