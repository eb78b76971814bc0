"""Motion-code model: a speaker-free code of the mouth's state per frame, and the target's own
frames as its identity.

A face's look at a given mouth state is hardest to invent and easiest to find: a target clip
already shows its mouth in many states. So identity is the target clip itself (its frames, and
their Glow latents), motion is a small code c_t in R^D (`mc.code_dim`) per driver frame, and
rendering shows, for each driver frame, the target frame(s) whose code is nearest:
- `mc.top_k = 1`: the target's own frame (exact pixels, no flow round trip);
- `mc.top_k > 1`: the Glow latents of the k nearest target frames blended with softmax weights
  of their similarity at `mc.temperature`, decoded by the flow (the flow interpolates between
  mouth states the target showed).

The code is read from the mouth box of the frame (`mi.mouth_x0..y1`, the framing aligned crops
share) and from its difference to the clip's mean mouth box (the encoder sees the whole clip
through that mean, so it can subtract the speaker's own mouth), by a small conv net. It is trained
without pairs or any hidden factor, from what a corpus gives:
- `cls`: the word, read from the clip's code sequence by a sequence classifier, so codes carry
  the mouth shapes that tell words apart;
- `confusion`: a speaker classifier on the codes (trained by `speaker` on detached codes) must
  find them uninformative, so the same mouth state gets the same code whoever shows it.

Limits: a still photo as the target (one frame) leaves nothing to choose from (the output is that
frame); a mouth state the target clip never shows is rendered by the nearest one it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from factorflow.config import Config
from factorflow.factor import motion as M
from factorflow.factor.sequence import SequenceClassifier
from factorflow.flows import Glow
from factorflow.flows.likelihood import dequantize, postprocess
from factorflow.models.base import Batch, BatchRandom, FlowModel
from factorflow.models.stage2 import OnStageOneFlow

__all__ = [
    "CropDecoder",
    "MotionCodeModel",
    "MouthEncoder",
    "SpeakerAdversary",
    "TargetBank",
    "box_pixels",
]


def box_pixels(size: int, box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) fractions of the side -> pixel bounds of at least 4x4 pixels."""
    x0, y0, x1, y1 = (round(v * size) for v in box)
    return x0, y0, max(x1, x0 + 4), max(y1, y0 + 4)


class MouthEncoder(nn.Module):
    """Frames [N,3,H,W] in [-0.5, 0.5] and their clip's mean frame [N or 1,3,H,W] -> codes [N,D]:
    a conv net on [mouth box, mouth box minus the clip's mean mouth box]."""

    def __init__(self, size: int, box: tuple[float, float, float, float], dim: int, width: int):
        super().__init__()
        self.bounds = box_pixels(size, box)
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(6, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * w, 128),
            nn.ReLU(),
            nn.Linear(128, dim),
        )

    def crop(self, x: Tensor) -> Tensor:
        x0, y0, x1, y1 = self.bounds
        return x[..., y0:y1, x0:x1]

    def forward(self, frames: Tensor, clip_mean: Tensor) -> Tensor:
        x, m = self.crop(frames), self.crop(clip_mean)
        return self.net(torch.cat([x, 4 * (x - m.expand_as(x))], 1))


class CropDecoder(nn.Module):
    """g(mean mouth box, c) -> the frame's mouth box minus the clip's mean: what mouth state c
    looks like on this face. Grounds the code in the mouth's appearance (`rec`)."""

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3 + dim, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )

    def forward(self, mean_crop: Tensor, code: Tensor) -> Tensor:
        n, _, h, w = mean_crop.shape
        grid = code[:, :, None, None].expand(n, code.shape[1], h, w)
        return self.net(torch.cat([mean_crop, grid], 1))


class SpeakerAdversary(nn.Module):
    """c_t -> speaker logits; `detached` runs it with its weights cut from the graph (the
    encoder's confusion term must not train the adversary)."""

    def __init__(self, dim: int, speakers: int, hidden: int = 64) -> None:
        super().__init__()
        self.l1 = nn.Linear(dim, hidden)
        self.l2 = nn.Linear(hidden, speakers)

    def forward(self, code: Tensor) -> Tensor:
        return self.l2(torch.relu(self.l1(code)))

    def detached(self, code: Tensor) -> Tensor:
        h = torch.relu(F.linear(code, self.l1.weight.detach(), self.l1.bias.detach()))
        return F.linear(h, self.l2.weight.detach(), self.l2.bias.detach())


@dataclass
class TargetBank:
    """A target clip as identity: frames uint8 [T,3,H,W], their codes [T,D], and (for blending)
    their Glow latents per level [T,...]."""

    frames: Tensor
    codes: Tensor
    latents: list[Tensor] | None


class MotionCodeModel(OnStageOneFlow, FlowModel):
    name = "motioncode"
    val_metric = "objective"

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.af = config.af  # the two-stage recipe: glow_checkpoint, num_words
        self.cfg = config.mc
        self.n_bits = config.flow.n_bits
        self.flow = Glow(config.flow)
        self.flow.requires_grad_(False)
        dim = self.cfg.code_dim
        self.encoder = MouthEncoder(config.data.size, config.mi.mouth_box, dim, self.cfg.width)
        self.classifier = None
        if self.af.num_words > 0:
            self.word_in = nn.Linear(dim, self.cfg.cls_hidden)
            self.classifier = SequenceClassifier(self.cfg.cls_hidden, self.af.num_words)
        self.adversary = None
        if self.cfg.num_speakers > 1:
            self.adversary = SpeakerAdversary(dim, self.cfg.num_speakers)
        self.decoder = CropDecoder(dim, 2 * self.cfg.width) if self.cfg.w_rec > 0 else None

    @property
    def loss_weights(self) -> dict[str, float]:
        weights: dict[str, float] = {}
        if self.classifier is not None:
            weights["cls"] = self.cfg.w_cls
        if self.adversary is not None:
            weights.update(confusion=self.cfg.w_confusion, speaker=1.0)
        if self.decoder is not None:
            weights["rec"] = self.cfg.w_rec
        return weights

    @property
    def glow_checkpoint(self) -> str:
        return self.af.glow_checkpoint

    # -- codes -----------------------------------------------------------------------------
    def _x(self, frames: Tensor) -> Tensor:
        return frames.to(self.device).float() / 255.0 - 0.5

    def losses(self, batch: Batch, rand: BatchRandom) -> dict[str, Tensor]:
        clips = batch["frames"]
        b, t = clips.shape[:2]
        x = self._x(clips)
        mean = x.mean(1, keepdim=True).expand_as(x)
        codes = self.encoder(x.flatten(0, 1), mean.flatten(0, 1)).view(b, t, -1)
        terms: dict[str, Tensor] = {}
        if self.decoder is not None:
            # on `mc.rec_frames` random frames per clip (the decoder is the costly part)
            k = min(t, self.cfg.rec_frames)
            pick = rand.rand((b, t)).to(codes.device).argsort(1)[:, :k]
            rows = (torch.arange(b, device=codes.device)[:, None] * t + pick).flatten()
            crop = self.encoder.crop(x.flatten(0, 1)[rows])
            mean_crop = self.encoder.crop(mean[:, 0])
            change = crop - mean_crop.repeat_interleave(k, 0)
            pred = self.decoder(mean_crop.repeat_interleave(k, 0), codes.flatten(0, 1)[rows])
            terms["rec"] = M.relative_error(pred.view(b, k, -1), change.view(b, k, -1))
        if self.classifier is not None:
            logits = self.classifier(torch.relu(self.word_in(codes)))
            words = batch["word"].to(self.device)
            terms["cls"] = M.word_classification(logits, words)
            terms["word_acc"] = (logits.argmax(1) == words).float()
        if self.adversary is not None:
            speakers = batch["speaker"].to(self.device)
            terms["speaker"] = M.speaker_classification(self.adversary(codes.detach()), speakers)
            terms["confusion"] = M.speaker_confusion(self.adversary.detached(codes))
        if not terms:
            raise ValueError("motioncode needs word labels, speaker ids or mc.w_rec > 0 to learn")
        weights = self.loss_weights
        terms["objective"] = sum(w * terms[k] for k, w in weights.items()).detach()
        return terms

    # -- reenactment -------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, frames: Tensor) -> list[Tensor]:
        """uint8 [N,3,H,W] -> Glow latents z_1..z_L at the bin centres."""
        return self.flow.encode(dequantize(frames.to(self.device), self.n_bits, None)).zs

    @torch.no_grad()
    def decode(self, zs: list[Tensor]) -> Tensor:
        x, _ = self.flow.inverse(zs)
        return postprocess(x, self.n_bits)

    @torch.no_grad()
    def clip_mean(self, frames: Tensor, batch_size: int = 64) -> Tensor:
        """Mean frame [1,3,H,W] in [-0.5, 0.5] of uint8 frames [T,3,H,W]."""
        total = sum(
            self._x(frames[i : i + batch_size]).sum(0, keepdim=True)
            for i in range(0, len(frames), batch_size)
        )
        return total / len(frames)

    @torch.no_grad()
    def codes(self, frames: Tensor, mean: Tensor, batch_size: int = 64) -> Tensor:
        """Codes [T,D] of uint8 frames [T,3,H,W] against their clip's mean frame."""
        return torch.cat(
            [
                self.encoder(self._x(frames[i : i + batch_size]), mean)
                for i in range(0, len(frames), batch_size)
            ]
        )

    @torch.no_grad()
    def identity(self, target: Tensor) -> TargetBank:
        codes = self.codes(target, self.clip_mean(target))
        latents = None
        if self.cfg.top_k > 1:
            parts = [self.encode(target[i : i + 64]) for i in range(0, len(target), 64)]
            latents = [torch.cat(level) for level in zip(*parts, strict=True)]
        return TargetBank(target.to(self.device), codes, latents)

    @torch.no_grad()
    def motion(self, driver: Tensor, mean: Tensor | None = None) -> Tensor:
        """Codes [T,D] of driver frames [T,3,H,W], against `mean` (default: these frames')."""
        return self.codes(driver, self.clip_mean(driver) if mean is None else mean)

    def clip_motion(self, driver: Tensor, batch_size: int) -> Callable[[Tensor], Any]:
        mean = self.clip_mean(driver, batch_size)
        return lambda frames: self.motion(frames, mean)

    @torch.no_grad()
    def render(self, identity: TargetBank, motion: Tensor) -> Tensor:
        w = M.match_weights(motion, identity.codes, self.cfg.top_k, self.cfg.temperature)
        if identity.latents is None:
            return identity.frames[w.argmax(1)]
        return self.decode([torch.einsum("nm,m...->n...", w, z) for z in identity.latents])

    # -- controlled generation -------------------------------------------------------------
    @torch.no_grad()
    def mouth_factor(self, frames: Tensor) -> Tensor:
        """The codes [T,D] of one clip's frames, against the clip's mean frame (a still face:
        against itself)."""
        return self.motion(frames)

    @torch.no_grad()
    def render_mouth(self, face: Tensor, factors: Tensor, batch_size: int = 64) -> Tensor:
        """The face with its mouth box changed by what the crop decoder says each code changes:
        box + g(box, c) - g(box, c_face), c_face being the face's own code; outside the box the
        face is kept exactly. Needs the decoder (`mc.w_rec > 0` in training)."""
        if self.decoder is None:
            raise ValueError(
                "this motioncode model was trained without its mouth decoder (mc.w_rec=0), so it "
                "cannot draw a mouth for a code"
            )
        x = self._x(face[None])
        crop = self.encoder.crop(x)
        base = self.decoder(crop, self.encoder(x, x))
        x0, y0, x1, y1 = self.encoder.bounds
        out = []
        for i in range(0, len(factors), batch_size):
            codes = factors[i : i + batch_size].to(self.device)
            n = len(codes)
            change = self.decoder(crop.expand(n, *crop.shape[1:]), codes) - base
            frames = x.repeat(n, 1, 1, 1)
            frames[..., y0:y1, x0:x1] = crop + change
            out.append(((frames + 0.5) * 255).round().clamp(0, 255).to(torch.uint8))
        return torch.cat(out)

    @torch.no_grad()
    def factorize(self, frames: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """One clip's frames [T,3,H,W] -> (identity: its mean latent per level [1,...],
        motion: [codes [T, D]]), for the leakage probes."""
        parts = [self.encode(frames[i : i + 64]) for i in range(0, len(frames), 64)]
        means = [torch.cat(level).mean(0, keepdim=True) for level in zip(*parts, strict=True)]
        return means, [self.motion(frames)]
