"""Attribute factorization (AF) on a Glow: z_l = s_l + r_l per level (METHOD.md section 3).

Stage 2 of the thesis trains the encoders (and the word classifier) on a frozen flow; with
`af.joint` the flow is fine-tuned too, its likelihood (`bpd`, weight `af.w_nll`) as a regulariser.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from factorflow.config import Config
from factorflow.factor import losses as L
from factorflow.factor.encoders import build_encoders
from factorflow.factor.sequence import FrameFeatures, SequenceClassifier
from factorflow.flows import Glow
from factorflow.flows.glow import GlowEncoding
from factorflow.flows.likelihood import bits_per_dim, dequantize, postprocess
from factorflow.models.base import (
    Batch,
    BatchRandom,
    FlowModel,
    flatten_levels,
    unflatten_levels,
)
from factorflow.models.glow import GlowModel
from factorflow.models.stage2 import OnStageOneFlow

__all__ = ["AFModel"]


class AFModel(OnStageOneFlow, FlowModel):
    name = "af"
    val_metric = "objective"

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.cfg = config.af
        self.n_bits = config.flow.n_bits
        self.flow = self.build_flow(config)
        shapes = self.flow.latent_shapes
        self.encoders = build_encoders(self.cfg.encoder, shapes, self.cfg.encoder_hidden)
        self.classifier = None
        if self.cfg.num_words > 0:
            self.features = FrameFeatures(shapes, self.cfg.cls_hidden)
            self.classifier = SequenceClassifier(
                self.cfg.cls_hidden, self.cfg.num_words, self.cfg.sequence_model
            )
        if not self.cfg.joint:
            self.flow.requires_grad_(False)
        self._latents: OrderedDict[int, list[Tensor]] = OrderedDict()  # clip index -> latents

    def build_flow(self, config: Config) -> Glow:
        return Glow(config.flow)

    @property
    def loss_weights(self) -> dict[str, float]:
        c = self.cfg
        weights = {"source": c.w_source, "pair": c.w_pair, "target": c.w_target}
        if self.classifier is not None:
            weights["cls"] = c.w_cls
        if c.joint:
            weights["bpd"] = c.w_nll
        return weights

    @property
    def glow_checkpoint(self) -> str:
        return self.cfg.glow_checkpoint

    def plain_glow(self) -> GlowModel | None:
        if self.flow.config.cond_channels > 0:  # the hybrid's MI-flow reads a condition
            return None
        return super().plain_glow()

    # -- the factorization ---------------------------------------------------------------
    def split(self, zs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level z [N,C,H,W] -> (s, r) with s + r == z exactly."""
        rs = [enc(z) for enc, z in zip(self.encoders, zs, strict=True)]
        return [z - r for z, r in zip(zs, rs, strict=True)], rs

    def encode(self, frames: Tensor, rand: BatchRandom | None = None) -> GlowEncoding:
        """uint8 [N,3,H,W] -> latents z_1..z_L, logdet [N] and the split priors' kept halves."""
        x = dequantize(frames.to(self.device), self.n_bits, rand)
        with torch.set_grad_enabled(self.cfg.joint and torch.is_grad_enabled()):
            return self.flow.encode(x)

    @torch.no_grad()
    def factorize(self, frames: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        return self.split(self.encode(frames)[0])

    def decode(self, zs: list[Tensor]) -> Tensor:
        with torch.no_grad():
            x, _ = self.flow.inverse(zs)
        return postprocess(x, self.n_bits)

    def _cached_latents(self, flat: Tensor, index: Tensor, t: int) -> list[Tensor]:
        """Latents of a batch of clips from a frozen flow, encoded once per clip (bin centre).

        A frozen flow maps a frame to the same latent at every step, so stage 2 need not run the
        flow again: with the cache, an epoch after the first costs only the encoders. Training
        batches only (`index` is an index into the training set). The cache holds at most
        `af.cache_clips` clips, in CPU memory, and forgets the least recently used first.
        """
        keys = index.tolist()
        missing = [i for i, k in enumerate(keys) if k not in self._latents]
        if missing:
            rows = torch.tensor(missing)
            frames = flat.view(len(keys), t, *flat.shape[1:])[rows].flatten(0, 1)
            with torch.no_grad():
                zs = self.encode(frames).zs
            for j, i in enumerate(missing):
                self._latents[keys[i]] = [z[j * t : (j + 1) * t].cpu() for z in zs]
        out = [[] for _ in self.encoders]
        for k in keys:
            self._latents.move_to_end(k)
            for level, z in zip(out, self._latents[k], strict=True):
                level.append(z)
        while len(self._latents) > self.cfg.cache_clips:
            self._latents.popitem(last=False)
        return [torch.cat(level).to(self.device) for level in out]

    # -- training ------------------------------------------------------------------------
    def losses(self, batch: Batch, rand: BatchRandom) -> dict[str, Tensor]:
        frames = batch["frames"]
        b, t = frames.shape[:2]
        if b < 2 or t < 2:
            raise ValueError(f"AF needs batches of >= 2 clips of >= 2 frames, got {b}x{t}")
        flat = frames.flatten(0, 1)
        # A frozen flow serves stage 2 with bin-centre latents, the ones reenactment decodes;
        # dequantisation noise is only needed when the likelihood is trained (joint).
        cached = self.training and self.cfg.cache_latents and not self.cfg.joint
        if not cached or "index" not in batch:
            encoding = self.encode(flat, rand if self.cfg.joint else None)
            zs = encoding.zs
        else:
            zs = self._cached_latents(flat, batch["index"], t)
        ss, rs = self.split(zs)
        perm = L.derangement(t, b, rand.rand)
        target = L.derangement(b, 1, rand.rand)[0]
        terms = {"source": 0.0, "pair": 0.0, "target": 0.0}
        for z, s, r, enc in zip(zs, ss, rs, self.encoders, strict=True):
            z, s, r = (v.view(b, t, *v.shape[1:]) for v in (z, s, r))
            terms["source"] = terms["source"] + L.source_structure(s, z)
            terms["pair"] = terms["pair"] + L.random_pair_reconstruction(s, r, z, perm)
            terms["target"] = terms["target"] + L.target_structure(r, s[target], z[target], enc)
        if self.classifier is not None:
            feats = self.features(rs).view(b, t, -1)
            logits = self.classifier(feats)
            words = batch["word"].to(self.device)
            terms["cls"] = L.sequence_classification(logits, words.clamp(min=0)) * (words >= 0)
            terms["word_acc"] = (logits.argmax(1) == words).float()
        if self.cfg.joint:
            for key, value in self.flow_terms(flat, encoding, rand).items():
                terms[key] = value.view(b, t).mean(1)
        weights = self.loss_weights
        terms["objective"] = sum(w * terms[k] for k, w in weights.items()).detach()
        return terms

    def flow_terms(
        self, frames: Tensor, encoding: GlowEncoding, rand: BatchRandom
    ) -> dict[str, Tensor]:
        """Joint training: per-frame terms [N] that train the flow, here its bits/dim.

        frames: the uint8 frames [N,3,H,W] whose latents `encoding` holds. The hybrid overrides
        this with the MI-flow's terms, which need the frames' condition.
        """
        zs, logdet, kept = encoding
        prior = sum(self.flow.prior_log_prob(zs, kept=kept))
        return {"bpd": bits_per_dim(prior + logdet, frames[0].numel(), self.n_bits)}

    # -- reenactment -----------------------------------------------------------------------
    def identity(self, target: Tensor) -> list[Tensor]:
        ss, _ = self.factorize(target)
        return [s.mean(0, keepdim=True) for s in ss]

    def motion(self, driver: Tensor, structure_mean: list[Tensor] | None = None) -> list[Tensor]:
        """Per level what the driver frames [T,3,H,W] give: r, or with `af.motion=residual`
        r + s - `structure_mean` (default: the mean s of these frames)."""
        return self.transferred(*self.factorize(driver), structure_mean)

    def transferred(
        self, ss: list[Tensor], rs: list[Tensor], structure_mean: list[Tensor] | None
    ) -> list[Tensor]:
        if self.cfg.motion == "r":
            return rs
        means = structure_mean or [s.mean(0, keepdim=True) for s in ss]
        return [r + s - m for s, r, m in zip(ss, rs, means, strict=True)]

    @torch.no_grad()
    def structure_mean(self, frames: Tensor, batch_size: int = 64) -> list[Tensor]:
        """Mean s per level over all frames [T,3,H,W], encoded `batch_size` at a time."""
        sums: list[Tensor] | None = None
        for i in range(0, len(frames), batch_size):
            ss = [s.sum(0, keepdim=True) for s in self.factorize(frames[i : i + batch_size])[0]]
            sums = ss if sums is None else [a + b for a, b in zip(sums, ss, strict=True)]
        return [s / len(frames) for s in sums]

    def clip_motion(self, driver: Tensor, batch_size: int) -> Callable[[Tensor], Any]:
        """Residual motion measures s against the whole driver clip, however it is chunked."""
        if self.cfg.motion == "r":
            return self.motion
        mean = self.structure_mean(driver, batch_size)
        return lambda frames: self.motion(frames, mean)

    def render(self, identity: list[Tensor], motion: list[Tensor]) -> Tensor:
        return self.decode([s + r for s, r in zip(identity, motion, strict=True)])

    # -- controlled generation -------------------------------------------------------------
    @torch.no_grad()
    def mouth_factor(self, frames: Tensor) -> Tensor:
        """r of each frame, all levels flattened: [T,D]."""
        parts = [
            flatten_levels(self.factorize(frames[i : i + 64])[1]) for i in range(0, len(frames), 64)
        ]
        return torch.cat(parts)

    def _mouth_motion(self, face: Tensor, rs: list[Tensor]) -> Any:
        """What `render` takes as motion for r levels [N,...] on the face uint8 [3,H,W]."""
        return rs

    @torch.no_grad()
    def render_mouth(self, face: Tensor, factors: Tensor, batch_size: int = 64) -> Tensor:
        """decode(s of the face + r) for each r in factors [N,D]."""
        ss, _ = self.factorize(face[None])
        shapes = [tuple(s.shape[1:]) for s in ss]
        out = []
        for i in range(0, len(factors), batch_size):
            rs = unflatten_levels(factors[i : i + batch_size].to(self.device), shapes)
            out.append(self.render(ss, self._mouth_motion(face, rs)))
        return torch.cat(out)
