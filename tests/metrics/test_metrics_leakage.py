import math

import pytest
import torch
from torch import nn

from factorflow.metrics.leakage import information, leakage, pooled, split_clips

T = 4


class _Factorized(nn.Module):
    """A model whose s holds the speaker and r the word and the mouth opening, each with noise.

    Frames carry their labels in pixel (0, 0): channel 0 speaker, 1 word, 2 opening x 100.
    """

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        g = torch.Generator().manual_seed(0)
        self.speaker_codes = 2 * torch.randn(4, 6, generator=g)
        self.word_codes = 2 * torch.randn(3, 6, generator=g)
        self.gen = torch.Generator().manual_seed(1)

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def factorize(self, frames: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        speaker, word = int(frames[0, 0, 0, 0]), int(frames[0, 1, 0, 0])
        opening = frames[:, 2, 0, 0].float()[:, None] / 100
        noise = torch.randn(len(frames), 12, generator=self.gen)
        s = self.speaker_codes[speaker].expand(len(frames), 6) + noise[:, :6]
        r = torch.cat([self.word_codes[word] + noise[:, 6:], 5 * opening], 1)
        return [s.view(len(frames), 6, 1, 1)], [r.view(len(frames), 7, 1, 1)]


def _clips() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    speakers = torch.arange(4).repeat_interleave(6)
    words = torch.arange(3).repeat_interleave(2).repeat(4)
    opening = torch.randint(0, 80, (24, T), generator=g)
    clips = torch.zeros(24, T, 3, 8, 8, dtype=torch.uint8)
    clips[:, :, 0, 0, 0] = speakers[:, None]
    clips[:, :, 1, 0, 0] = words[:, None]
    clips[:, :, 2, 0, 0] = opening
    return clips, speakers, words, opening.float() / 100


def test_split_takes_every_second_clip_of_each_group():
    speakers = torch.tensor([0, 0, 0, 1, 1, 0])
    words = torch.tensor([0, 0, 1, 0, 0, 0])
    assert split_clips(speakers, words).tolist() == [False, True, False, False, True, False]


def test_pooled_repeats_clip_level_parts_and_pools_maps():
    per_clip = torch.ones(1, 2, 8, 8)
    per_frame = torch.arange(3 * 16.0).view(3, 1, 4, 4)
    feats = pooled([per_clip, per_frame], 3)
    assert feats.shape == (3, 2 * 16 + 16)
    assert torch.equal(feats[:, 32:], per_frame.flatten(1))


def test_probes_find_the_speaker_in_s_and_the_word_in_r():
    clips, speakers, words, opening = _clips()
    out = leakage(_Factorized(), clips, speakers, words, opening)
    assert out["chance_speaker"] == 0.25 and out["chance_word"] == 1 / 3
    assert out["probe_clips_train"] == out["probe_clips_test"] == 12
    assert out["speaker_from_s"] == 1.0 and out["word_from_r"] == 1.0
    assert out["speaker_from_r"] < 0.6 and out["word_from_s"] < 0.7
    assert out["opening_r2_from_r"] > 0.9 and out["opening_r2_from_s"] < 0.2


def test_information_is_high_where_the_label_lives():
    # 64 clips of 8 frames: s holds the speaker's code, r the word's, each under unit noise
    g = torch.Generator().manual_seed(0)
    speakers = torch.arange(4).repeat_interleave(16)
    words = torch.arange(3).repeat(22)[:64]
    codes_s, codes_w = 2 * torch.randn(4, 6, generator=g), 2 * torch.randn(3, 6, generator=g)
    s = codes_s[speakers][:, None].expand(64, 8, 6) + torch.randn(64, 8, 6, generator=g)
    r = codes_w[words][:, None].expand(64, 8, 6) + torch.randn(64, 8, 6, generator=g)
    out = information({"s": s, "r": r}, speakers, words)
    assert out["mi_ceiling_speaker"] == pytest.approx(math.log(4))
    assert out["mi_ceiling_word"] == pytest.approx(math.log(3), abs=0.01)
    assert out["mi_s_speaker"] > 0.6 * out["mi_ceiling_speaker"]
    assert out["mi_r_word"] > 0.6 * out["mi_ceiling_word"]
    assert out["mi_r_speaker"] < 0.1 and out["mi_s_word"] < 0.1


def test_leakage_reports_information():
    clips, speakers, words, opening = _clips()
    out = leakage(_Factorized(), clips, speakers, words, opening)
    assert out["mi_r_word"] > out["mi_s_word"] and out["mi_s_speaker"] > out["mi_r_speaker"]
