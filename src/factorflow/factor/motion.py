"""Pure functions of the motion-code model (`models.motioncode`): its losses, returning per-clip
terms [B], and the matching of driver codes to a target's frames.

Codes of B clips of T frames are [B,T,D]; speaker logits [B,T,K].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = [
    "match_weights",
    "relative_error",
    "speaker_classification",
    "speaker_confusion",
    "word_classification",
]


def speaker_confusion(logits: Tensor) -> Tensor:
    """Cross-entropy of a speaker classifier's prediction to the uniform distribution, minus its
    floor log(K): 0 when the code says nothing about the speaker. logits [B,T,K] -> [B]."""
    k = logits.shape[-1]
    return -F.log_softmax(logits, -1).mean(-1).mean(1) - math.log(k)


def speaker_classification(logits: Tensor, speakers: Tensor) -> Tensor:
    """The adversary's own loss: per-frame cross-entropy of the clip's speaker. logits [B,T,K],
    speakers [B] (-1: unknown, no loss) -> [B]."""
    b, t, k = logits.shape
    labels = speakers.clamp(min=0).repeat_interleave(t)
    ce = F.cross_entropy(logits.reshape(b * t, k), labels, reduction="none").view(b, t).mean(1)
    return ce * (speakers >= 0)


def word_classification(logits: Tensor, words: Tensor) -> Tensor:
    """Cross-entropy of the word read from a clip's code sequence: logits [B,W], words [B] (-1:
    unknown, no loss) -> [B]."""
    return F.cross_entropy(logits, words.clamp(min=0), reduction="none") * (words >= 0)


def relative_error(pred: Tensor, target: Tensor) -> Tensor:
    """Squared error over the squared target, per clip: [B,...] -> [B]. 0 at the truth, 1 for a
    prediction of 0 (nothing of the change explained); the batch's energy is the denominator, so
    clips that hardly move do not divide by ~0."""
    energy = target.pow(2).flatten(1).sum(1).mean().detach().clamp(min=1e-12)
    return (pred - target).pow(2).flatten(1).sum(1) / energy


def match_weights(queries: Tensor, keys: Tensor, top_k: int, temperature: float) -> Tensor:
    """Which target frames show each driver frame's mouth state: weights [N, M] (rows sum to 1).

    queries [N,D] (driver codes), keys [M,D] (the target's frame codes), compared by cosine
    similarity. top_k=1: all weight on the most similar frame; else a softmax at `temperature`
    over the `top_k` most similar frames (the rest get 0)."""
    sim = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T
    k = max(1, min(top_k, keys.shape[0]))
    top = sim.topk(k, dim=1)
    if k == 1:
        w = torch.ones_like(top.values)
    else:
        w = torch.softmax(top.values / max(temperature, 1e-6), 1)
    return torch.zeros_like(sim).scatter(1, top.indices, w)
