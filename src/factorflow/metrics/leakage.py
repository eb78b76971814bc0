"""Leakage probes: what a model's identity part s and motion part r give away.

A disentangled model keeps who is speaking out of r (speaker accuracy from r at chance) and what
is said out of s (word accuracy and mouth-opening R^2 from s at chance). The opposite read-outs
(speaker from s, word and opening from r) show that the parts carry what they should, so a probe
that fails everywhere is not mistaken for disentanglement.

Parts per frame come from `model.factorize(frames) -> (s levels, r levels)` where the model has it
(AF, hybrid); for a plain Glow from its level swap (s = top latent z_L, r = finer latents); for any
other model from `identity()` (one per clip, repeated over its frames) and `motion()`. Each level
[T,C,H,W] is average-pooled to at most `POOL`x`POOL` cells and the levels are concatenated.

Probes are linear (logistic regression, ridge) trained on half of each speaker-word group's clips
and tested on the other half, so train and test never share a clip. Speaker and word are predicted
per clip from the mean log-probability over its frames; opening per frame.

`information` adds nonlinear estimates in nats: InfoNCE lower bounds
(`metrics.information.estimate_mi`) of I(part; label) for each part and label, per frame, the
critic scored on held-out whole clips.
The ceiling is the label entropy H(label) of the clips probed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from factorflow.metrics.classifiers import fit_linear_probe, ridge_r2
from factorflow.metrics.information import estimate_mi
from factorflow.models.base import FlowModel

__all__ = [
    "MI_STEPS",
    "POOL",
    "factor_parts",
    "features",
    "information",
    "leakage",
    "pooled",
    "probe_parts",
    "split_clips",
]

POOL = 4
MI_STEPS = 500  # Adam steps of each InfoNCE critic in `information`


def _levels(value: Any) -> list[Tensor]:
    if torch.is_tensor(value):
        return [value]
    if isinstance(value, list | tuple) and all(torch.is_tensor(v) for v in value):
        return list(value)
    raise ValueError(
        f"expected a tensor or a list of tensors as a representation, got {type(value)}"
    )


@torch.no_grad()
def factor_parts(model: FlowModel, frames: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """uint8 frames [T,3,H,W] of one clip -> (s, r): lists of per-level tensors [T or 1,...]."""
    s, r = model.factorize(frames.to(model.device))
    return _levels(s), _levels(r)


def pooled(levels: list[Tensor], frames: int) -> Tensor:
    """Per-level tensors [T or 1, ...] -> features [frames, D] (spatial maps pooled to POOL^2)."""
    out = []
    for level in levels:
        x = level.float()
        if x.dim() == 4 and x.shape[-1] > POOL:
            x = F.adaptive_avg_pool2d(x, POOL)
        x = x.flatten(1).cpu()
        out.append(x.expand(frames, -1) if x.shape[0] == 1 else x)
    feats = torch.cat(out, 1)
    if feats.shape[0] != frames:
        raise ValueError(
            f"a representation has {feats.shape[0]} rows for a clip of {frames} frames"
        )
    return feats


def features(model: FlowModel, clips: Tensor) -> tuple[Tensor, Tensor]:
    """uint8 clips [N,T,3,H,W] -> (s, r) frame features [N,T,Ds], [N,T,Dr]."""
    s_all, r_all = [], []
    for clip in clips:
        s, r = factor_parts(model, clip)
        s_all.append(pooled(s, len(clip)))
        r_all.append(pooled(r, len(clip)))
    return torch.stack(s_all), torch.stack(r_all)


def split_clips(speakers: Tensor, words: Tensor) -> Tensor:
    """bool [N]: True for probe-test clips, every second clip of each (speaker, word) group."""
    test = torch.zeros(len(speakers), dtype=torch.bool)
    seen: dict[tuple[int, int], int] = {}
    for i, key in enumerate(zip(speakers.tolist(), words.tolist(), strict=True)):
        test[i] = seen.get(key, 0) % 2 == 1
        seen[key] = seen.get(key, 0) + 1
    return test


def _clip_accuracy(feats: Tensor, labels: Tensor, test: Tensor, n_classes: int, seed: int) -> float:
    """Frame-level logistic probe; clips classified by their frames' mean log-probability."""
    n, t, d = feats.shape
    train = ~test
    probe = fit_linear_probe(
        feats[train].reshape(-1, d), labels[train].repeat_interleave(t), n_classes, seed=seed
    )
    with torch.no_grad():
        logp = F.log_softmax(probe(feats[test].reshape(-1, d)), 1).view(-1, t, n_classes)
    return float((logp.mean(1).argmax(1) == labels[test]).float().mean())


def probe_parts(
    s: Tensor,
    r: Tensor,
    speakers: Tensor,
    words: Tensor,
    opening: Tensor,
    seed: int = 0,
) -> dict[str, float]:
    """Linear read-outs of frame features s [N,T,Ds], r [N,T,Dr] of N clips.

    speakers, words: ids [N]; opening [N,T]. -> accuracies (clip level), R^2 (frame level) and the
    chance levels.
    """
    test = split_clips(speakers, words)
    if test.all() or not test.any():
        raise ValueError("leakage probes need at least two clips of one speaker saying one word")
    n_speakers = int(speakers.max()) + 1
    n_words = int(words.max()) + 1
    out: dict[str, float] = {}
    for name, feats in (("s", s), ("r", r)):
        out[f"speaker_from_{name}"] = _clip_accuracy(feats, speakers, test, n_speakers, seed)
        out[f"word_from_{name}"] = _clip_accuracy(feats, words, test, n_words, seed)
        d = feats.shape[-1]
        t = feats.shape[1]
        out[f"opening_r2_from_{name}"] = ridge_r2(
            feats[~test].reshape(-1, d),
            opening[~test].flatten(),
            feats[test].reshape(-1, d),
            opening[test].flatten(),
            groups=torch.arange(int((~test).sum())).repeat_interleave(t),
        )
    out["chance_speaker"] = 1.0 / n_speakers
    out["chance_word"] = 1.0 / n_words
    out["probe_clips_train"] = int((~test).sum())
    out["probe_clips_test"] = int(test.sum())
    out["dims_s"] = int(s.shape[-1])
    out["dims_r"] = int(r.shape[-1])
    return out


def _entropy(labels: Tensor) -> float:
    p = torch.bincount(labels).double()
    p = p[p > 0] / len(labels)
    return float(-(p * p.log()).sum())


def information(
    parts: dict[str, Tensor], speakers: Tensor, words: Tensor, seed: int = 0, steps: int = MI_STEPS
) -> dict[str, float]:
    """InfoNCE estimates (nats) of I(part; label) from frame features, e.g. {"s": s, "r": r}, each
    [N,T,D] for N clips with speaker and word ids [N]: keys mi_{part}_{speaker,word}, and the
    ceilings mi_ceiling_{speaker,word} = H(label). Disentangled: mi_s_speaker and mi_r_word high,
    mi_r_speaker and mi_s_word near 0. Each estimate holds out whole clips (a quarter).
    """
    out: dict[str, float] = {}
    for label_name, labels in (("speaker", speakers), ("word", words)):
        for part, feats in parts.items():
            n, t = feats.shape[:2]
            out[f"mi_{part}_{label_name}"] = estimate_mi(
                feats.reshape(n * t, -1),
                labels.long().repeat_interleave(t),
                "infonce",
                steps,
                seed,
                groups=torch.arange(n).repeat_interleave(t),
            )
        out[f"mi_ceiling_{label_name}"] = _entropy(labels.long())
    return out


def leakage(
    model: FlowModel,
    clips: Tensor,
    speakers: Tensor,
    words: Tensor,
    opening: Tensor,
    seed: int = 0,
) -> dict[str, float]:
    """Leakage of `model` on uint8 clips [N,T,3,H,W] with speaker and word ids [N], opening [N,T].

    Keys: speaker_from_{s,r}, word_from_{s,r} (clip accuracy), opening_r2_from_{s,r},
    chance_speaker, chance_word, probe_clips_{train,test}, dims_{s,r}, and the keys of
    `information`. Leakage is speaker_from_r, word_from_s and opening_r2_from_s (mi_r_speaker and
    mi_s_word); the other three show what the parts retain.
    """
    s, r = features(model, clips)
    out = probe_parts(s, r, speakers, words, opening.float(), seed)
    return {**out, **information({"s": s, "r": r}, speakers, words, seed)}
