"""The MI-flow's training terms (METHOD.md section 4) and the small networks their bounds fit.

`MIObjective` returns per-frame terms for a conditional Glow and its condition; the model
(`factorflow.models.mi`) weights them. See that module's docstring for what each term does and why
CLUB sees a detached, standardised view of the condition.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from factorflow.factor import bounds
from factorflow.factor.config import MIConfig
from factorflow.factor.sequence import FrameFeatures
from factorflow.flows import Glow, GlowConfig
from factorflow.flows.glow import GlowEncoding
from factorflow.flows.likelihood import bits_per_dim

__all__ = [
    "GRID",
    "ConditionPosterior",
    "LatentCritic",
    "MIObjective",
    "pooled",
    "pooled_size",
    "standardised_view",
]

GRID = 4  # the bounds see every latent or condition level pooled to at most GRID x GRID cells


def pooled(maps: list[Tensor]) -> Tensor:
    """Per-level maps [B,C,H,W] -> one feature vector per sample [B, D] (GRID pooling, no
    parameters)."""
    return torch.cat(
        [
            F.adaptive_avg_pool2d(m, (min(m.shape[2], GRID), min(m.shape[3], GRID))).flatten(1)
            for m in maps
        ],
        1,
    )


def pooled_size(shapes: list[tuple[int, int, int]]) -> int:
    return sum(c * min(h, GRID) * min(w, GRID) for c, h, w in shapes)


class LatentCritic(nn.Module):
    """InfoNCE critic between multi-level maps: f(z, c) = g(E_z(z)) . h(E_c(c)), each side
    embedded per level by a conv, pooled and projected (`FrameFeatures`). -> scores [B, B]."""

    def __init__(
        self, z_shapes: list[tuple[int, int, int]], c_shapes: list[tuple[int, int, int]], dim: int
    ) -> None:
        super().__init__()
        self.embed_z = FrameFeatures(z_shapes, dim, GRID)
        self.embed_c = FrameFeatures(c_shapes, dim, GRID)
        self.score = bounds.SeparableCritic(dim, dim, dim)

    def forward(self, zs: list[Tensor], cond: list[Tensor]) -> Tensor:
        return self.score(self.embed_z(zs), self.embed_c(cond))


def standardised_view(cond: list[Tensor]) -> Tensor:
    """The condition as CLUB sees it: `pooled`, detached, and standardised per feature with the
    batch's statistics, so its scale cannot drift under q. -> [B, D]."""
    view = pooled(cond).detach()
    return (view - view.mean(0)) / view.std(0).clamp(min=1e-3)


class ConditionPosterior(nn.Module):
    """CLUB's q(c | z_L): a Gaussian over the standardised pooled condition (`standardised_view`,
    a fixed view: a learned one could be bent to hide what the bound should see) given an
    embedding of z_L. Its log-variance stays within +-LOGVAR_BOUND: the bound's gradient scales
    with 1 / variance, and q fitting a near-constant feature would otherwise multiply it by e^10.
    """

    LOGVAR_BOUND = 3.0

    def __init__(
        self, top_shape: tuple[int, int, int], c_shapes: list[tuple[int, int, int]], dim: int
    ) -> None:
        super().__init__()
        self.embed = FrameFeatures([top_shape], dim, GRID)
        self.q = bounds.GaussianQ(dim, pooled_size(c_shapes), dim, self.LOGVAR_BOUND)

    def forward(self, top: Tensor) -> tuple[Tensor, Tensor]:
        """z_L [B,C,H,W] -> (mean, logvar) of the pooled condition, each [B, D]."""
        return self.q(self.embed([top]))


class MIObjective(nn.Module):
    """The MI-flow's training terms on one batch, with the small networks its bounds fit: the
    InfoNCE critic (when `w_infonce` > 0) and CLUB's q(c | z_L) (when `w_club` > 0)."""

    def __init__(self, cfg: MIConfig, flow_config: GlowConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_bits = flow_config.n_bits
        shapes, c_shapes = flow_config.latent_shapes, flow_config.cond_shapes
        self.critic = None
        if cfg.w_infonce > 0:
            self.critic = LatentCritic(shapes[:-1], c_shapes, cfg.critic_hidden)
        self.club_q = None
        if cfg.w_club > 0:
            self.club_q = ConditionPosterior(shapes[-1], c_shapes, cfg.critic_hidden)

    @property
    def weights(self) -> dict[str, float]:
        """Weights of the terms `forward` returns (exactly those keys)."""
        c = self.cfg
        weights = {"bpd": 1.0, "relevance": c.beta}
        if self.critic is not None:
            weights["infonce"] = c.w_infonce
        if self.club_q is not None:
            weights["club"] = c.w_club
            weights["club_q"] = 1.0
        if c.w_resample > 0:
            weights["resample"] = c.w_resample
        return weights

    def forward(
        self,
        flow: Glow,
        cond: list[Tensor],
        encoding: GlowEncoding,
        target: Tensor,
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        """Per-frame terms [B] of `weights`. target: the bin-centre frames [B,3,H,W] encoded.

        The resampling draws its noise from `generator` (the same stream on every rank).
        """
        zs, logdet, kept = encoding
        priors = flow.prior_log_prob(zs, cond, kept)
        dims = target[0].numel()
        terms = {
            "bpd": bits_per_dim(logdet + sum(priors), dims, self.n_bits),
            "relevance": -sum(priors[:-1]) / (dims * math.log(2.0)),
        }
        if self.critic is not None:
            terms["infonce"] = -bounds.infonce(self.critic(zs[:-1], cond))
        if self.club_q is not None:
            c_view = standardised_view(cond)
            frozen = {k: v.detach() for k, v in self.club_q.named_parameters()}
            q_of_top = functional_call(self.club_q, frozen, (zs[-1],))
            terms["club"] = bounds.club(*q_of_top, c_view)
            q_mean, q_logvar = self.club_q(zs[-1].detach())
            fit = bounds.gaussian_log_likelihood(q_mean, q_logvar, c_view)
            terms["club_q"] = -fit / c_view.shape[1]
        if self.cfg.w_resample > 0:
            given = [None] * (len(zs) - 1) + [zs[-1]]
            redrawn = flow.sample_latents(
                len(target), self.cfg.resample_temperature, cond, given, generator
            )
            decoded, _ = flow.inverse(redrawn, cond)
            terms["resample"] = (decoded - target).square().flatten(1).mean(1)
        return terms
