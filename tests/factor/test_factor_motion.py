import math

import pytest
import torch

from factorflow.factor import motion as M


def test_speaker_confusion_is_zero_for_uniform_and_positive_otherwise():
    assert torch.allclose(M.speaker_confusion(torch.zeros(2, 3, 24)), torch.zeros(2), atol=1e-6)
    sure = torch.zeros(2, 3, 24)
    sure[..., 0] = 20.0
    assert torch.all(M.speaker_confusion(sure) > 1)


def test_speaker_and_word_classification_ignore_unknown_labels():
    loss = M.speaker_classification(torch.zeros(2, 3, 4), torch.tensor([1, -1]))
    assert loss[0] == pytest.approx(math.log(4)) and loss[1] == 0
    right = torch.tensor([[9.0, 0.0, 0.0], [0.0, 9.0, 0.0]])
    loss = M.word_classification(right, torch.tensor([0, -1]))
    assert loss[0] < 1e-3 and loss[1] == 0


def test_match_weights_pick_the_same_state_whatever_the_scale():
    keys = torch.eye(4)
    queries = 3 * torch.eye(4)[[2, 0, 3]]  # cosine: scale does not matter
    w = M.match_weights(queries, keys, top_k=1, temperature=0.1)
    assert torch.equal(w, torch.eye(4)[[2, 0, 3]])
    soft = M.match_weights(queries, keys, top_k=2, temperature=0.1)
    assert torch.allclose(soft.sum(1), torch.ones(3))
    assert torch.equal(soft.argmax(1), torch.tensor([2, 0, 3]))
    assert torch.all((soft > 0).sum(1) == 2)  # only the top 2 get weight
    assert torch.equal(
        M.match_weights(queries, keys[:1], top_k=5, temperature=0.1), torch.ones(3, 1)
    )


def test_relative_error_is_zero_at_the_truth_and_one_for_nothing_explained():
    target = torch.randn(3, 5, 7)
    assert torch.all(M.relative_error(target, target) == 0)
    assert M.relative_error(torch.zeros_like(target), target).mean() == pytest.approx(1.0)
