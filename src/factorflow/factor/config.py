"""Frozen configs of the paper's layer: attribute factorization (AF) and the MI-flow."""

from __future__ import annotations

from dataclasses import dataclass

ENCODERS = ("linear", "conv", "attention")
SEQUENCE_MODELS = ("bigru", "tcn")


@dataclass(frozen=True)
class AFConfig:
    """Attribute factorization z = s + r with r = E(z) (METHOD.md section 3)."""

    encoder: str = (
        "conv"  # "linear" (thesis: spatial linear map shared over channels) | "conv" | "attention"
    )
    encoder_hidden: int = 64
    w_source: float = 1.0  # source structure: s_t ~= clip mean
    w_pair: float = 1.0  # random-pair reconstruction under a derangement
    w_target: float = 1.0  # target structure of the mixed latent
    w_cls: float = 1.0  # sequential word classification from r
    w_nll: float = 0.0  # flow likelihood regulariser (joint fine-tuning only)
    sequence_model: str = "bigru"
    num_words: int = 0  # vocabulary size; 0 = taken from the training data by `train`
    cls_hidden: int = 128
    joint: bool = False  # fine-tune the flow jointly (else the flow is frozen: thesis stage 2)
    cache_latents: bool = True  # frozen flow: encode each training frame once (bin centre)
    stage1_steps: int = 1000  # Glow steps run by `train --model af` before stage 2
    glow_checkpoint: str = ""  # skip stage 1 and start from this Glow checkpoint

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"af.encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.sequence_model not in SEQUENCE_MODELS:
            raise ValueError(
                f"af.sequence_model must be one of {SEQUENCE_MODELS}, got {self.sequence_model!r}"
            )


@dataclass(frozen=True)
class MIConfig:
    """Mutual-information flow (METHOD.md section 4)."""

    cond_channels: int = 8
    mouth_region: str = "framing"  # "framing" (dataset's known mouth box) | "landmarks"
    prior_cond: str = "kept+cond"  # "cond" (thesis) | "kept+cond"
    coupling_cond: bool = False
    beta: float = 0.5  # condition relevance weight is 1 + beta
    w_infonce: float = 0.0
    w_club: float = 0.0
    w_resample: float = 1.0
    resample_temperature: float = 0.7
