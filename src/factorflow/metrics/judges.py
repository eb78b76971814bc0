"""The judges `evaluate` trains on the fly from real training clips (a mouth regressor and a
lip-reading word classifier), and the generator's ground truth of each reenacted pair."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from factorflow.data.synth import MOUTH_FACTORS, SynthMeta
from factorflow.metrics.classifiers import (
    MouthRegressor,
    WordClassifier,
    pearson,
    train_mouth_regressor,
    train_word_classifier,
)
from factorflow.metrics.clips import ClipSet

__all__ = ["OPENING", "Judges", "Truth", "render_truth", "train_judges"]

OPENING = MOUTH_FACTORS.index("opening")


@dataclass
class Judges:
    mouth: MouthRegressor
    words: WordClassifier
    report: dict[str, float]

    def opening(self, frames: Tensor) -> Tensor:
        """uint8 [N,3,H,W] -> measured mouth opening [N]."""
        return self.mouth.predict(frames)[:, OPENING]


def train_judges(
    train: ClipSet, test: ClipSet, n_words: int, steps: int, word_steps: int, seed: int
) -> Judges:
    start = time.perf_counter()
    mouth = train_mouth_regressor(
        train.frames.flatten(0, 1), train.mouth.flatten(0, 1), steps=steps, seed=seed
    )
    words = train_word_classifier(mouth, train.frames, train.words, n_words, word_steps, seed=seed)
    measured = mouth.predict(test.frames.flatten(0, 1))
    truth = test.mouth.flatten(0, 1)
    report = {
        "word_accuracy_real_train": float(
            (words.predict(train.frames) == train.words).float().mean()
        ),
        "word_accuracy_real_test": float((words.predict(test.frames) == test.words).float().mean()),
        "word_chance": 1.0 / n_words,
        **{
            f"{name}_corr_real_test": pearson(measured[:, k], truth[:, k])
            for k, name in enumerate(MOUTH_FACTORS)
        },
        "train_clips": len(train.clips),
        "test_clips": len(test.clips),
        "seconds": time.perf_counter() - start,
    }
    return Judges(mouth, words, report)


@dataclass
class Truth:
    """Ground truth of P pairs: frames uint8 [P,T,3,H,W], masks bool [P,T,H,W], the drivers'
    word ids [P] and true mouth opening [P,T]."""

    frames: Tensor
    masks: Tensor
    words: Tensor
    opening: Tensor


def render_truth(meta: SynthMeta, test: ClipSet, pair_list: list[tuple[int, int]]) -> Truth:
    """The generator's render of each pair: the target's face saying the driver's mouth track."""
    frames, masks = zip(
        *(meta.render_reenactment(test.clips[t], test.clips[d]) for t, d in pair_list), strict=True
    )
    drivers = torch.tensor([d for _, d in pair_list])
    return Truth(
        frames=torch.from_numpy(np.stack(frames)).permute(0, 1, 4, 2, 3).contiguous(),
        masks=torch.from_numpy(np.stack(masks)).bool(),
        words=test.words[drivers],
        opening=test.mouth[drivers, :, OPENING],
    )
