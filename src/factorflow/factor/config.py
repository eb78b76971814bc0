"""Frozen configs of the paper's layer: attribute factorization (AF) and the MI-flow."""

from __future__ import annotations

from dataclasses import dataclass

from factorflow.factor.encoders import ENCODERS

__all__ = [
    "CONDITIONS",
    "FINE_LATENTS",
    "MI_PRIOR_CONDS",
    "MOTIONS",
    "MOUTH_REGIONS",
    "SEQUENCE_MODELS",
    "AFConfig",
    "MCConfig",
    "MIConfig",
    "MouthFlowConfig",
]

SEQUENCE_MODELS = ("bigru", "tcn")
MOTIONS = ("r", "residual")


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
    cache_latents: bool = True  # frozen flow: encode each training clip once (bin centre)
    cache_clips: int = 1024  # at most this many clips cached (CPU memory, least recently used out)
    stage1_steps: int = 1000  # Glow steps run by `train --model af` before stage 2
    stage1_batch_size: int = 16  # frames per step in stage 1 (data.batch_size counts clips)
    glow_checkpoint: str = ""  # skip stage 1 and start from this Glow checkpoint
    # What reenactment takes from the driver (a use-time key): "r" (the paper: r_t) or "residual"
    # (r_t + s_t - mean_t s: also the driver's frame-to-frame change of its structure part,
    # where the trained encoders leave most of the mouth; README "Residual motion").
    motion: str = "r"

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"af.encoder must be one of {sorted(ENCODERS)}, got {self.encoder!r}")
        if self.motion not in MOTIONS:
            raise ValueError(f"af.motion must be one of {MOTIONS}, got {self.motion!r}")
        if self.sequence_model not in SEQUENCE_MODELS:
            raise ValueError(
                f"af.sequence_model must be one of {SEQUENCE_MODELS}, got {self.sequence_model!r}"
            )


MI_PRIOR_CONDS = ("cond", "kept+cond")
CONDITIONS = ("pixels", "landmarks")
MOUTH_REGIONS = ("framing",)
FINE_LATENTS = ("driver", "prior")


@dataclass(frozen=True)
class MIConfig:
    """Mutual-information flow (METHOD.md section 4)."""

    cond_channels: int = 8  # channels of each level's condition map c_l
    # What c is read from: "pixels" (the mouth box of the frame, as the thesis; it also shows the
    # speaker's lips and skin) or "landmarks" (the face tool's lip contours normalised by the
    # face: `face.landmarks.mouth_shape`; identity-free geometry, found from the frame itself).
    condition: str = "pixels"
    mouth_region: str = "framing"  # the dataset's known framing (batches carry no landmarks)
    prior_cond: str = "kept+cond"  # split prior input: "cond" (thesis) | "kept+cond"
    coupling_cond: bool = False  # also feed c_l to every coupling net of level l
    # Condition relevance: the conditional prior's log-density counts 1 + beta times. 0 by
    # default: beta > 0 rewards shrinking z_1..L-1 (the prior gains 1 + beta times what the
    # log-determinant loses), so it bounds no MI; at 32x32, beta=0.5 shrank them 10x in 600
    # steps, cost 0.3 bits/dim and left the hybrid's word classifier at chance.
    beta: float = 0.0
    w_infonce: float = 0.0  # InfoNCE lower bound on I(z_1..L-1; c), maximised
    w_club: float = 0.0  # CLUB upper bound on I(z_L; c), minimised
    w_resample: float = 1.0  # MSE of the image decoded from (z_L, z_1..L-1 resampled given c)
    resample_temperature: float = 0.7
    # Mouth box as fractions of the frame side (x0, y0, x1, y1): prepared crops put the mouth
    # centre at (0.50, 0.70), synthetic faces keep the mouth inside (0.31, 0.45)-(0.69, 0.88)
    # (so the default also takes in the lower eyelids of some synthetic faces).
    mouth_x0: float = 0.25
    mouth_y0: float = 0.45
    mouth_x1: float = 0.75
    mouth_y1: float = 0.92
    mouth_feather: float = 0.05  # width of the box's soft edge, a fraction of the side
    cond_hidden: int = 32  # channels of the condition pyramid
    critic_hidden: int = 64  # hidden units of the InfoNCE critic and of CLUB's q(c | z_L)
    # Reenactment's z_1..L-1: "driver" (the driver's own latents, METHOD 4) or "prior" (the mean
    # of their conditional prior given the driver's condition and the target's z_L).
    fine_latents: str = "driver"

    @property
    def mouth_box(self) -> tuple[float, float, float, float]:
        return (self.mouth_x0, self.mouth_y0, self.mouth_x1, self.mouth_y1)

    def __post_init__(self) -> None:
        if self.cond_channels < 1:
            raise ValueError(f"mi.cond_channels must be >= 1, got {self.cond_channels}")
        if self.mouth_region not in MOUTH_REGIONS:
            raise ValueError(
                f"mi.mouth_region must be one of {MOUTH_REGIONS} (batches carry frames only, no "
                f"landmarks; prepared data is aligned so the box holds the mouth), "
                f"got {self.mouth_region!r}"
            )
        if self.condition not in CONDITIONS:
            raise ValueError(f"mi.condition must be one of {CONDITIONS}, got {self.condition!r}")
        if self.prior_cond not in MI_PRIOR_CONDS:
            raise ValueError(
                f"mi.prior_cond must be one of {MI_PRIOR_CONDS}, got {self.prior_cond!r}"
            )
        if self.fine_latents not in FINE_LATENTS:
            raise ValueError(
                f"mi.fine_latents must be one of {FINE_LATENTS}, got {self.fine_latents!r}"
            )
        x0, y0, x1, y1 = self.mouth_box
        if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
            raise ValueError(
                f"mi.mouth_x0..y1 must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, "
                f"got {self.mouth_box}"
            )
        if self.mouth_feather < 0:
            raise ValueError(f"mi.mouth_feather must be >= 0, got {self.mouth_feather}")
        for name in ("beta", "w_infonce", "w_club", "w_resample", "resample_temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"mi.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class MCConfig:
    """Motion-code model (`models.motioncode`): a code of `code_dim` numbers per frame read from
    the mouth box (`mi.mouth_x0..y1`), matched against the target clip's own frames. Its stage-1
    recipe (glow_checkpoint, stage1_steps, num_words) is read from the af section."""

    code_dim: int = 16
    width: int = 16  # channels of the encoder's first conv (then 2x, 4x)
    cls_hidden: int = 64
    num_speakers: int = 0  # the adversary's classes; 0 = taken from the training data by `train`
    w_cls: float = 1.0  # word from the code sequence
    w_confusion: float = 0.1  # codes must not tell the speaker
    w_rec: float = 1.0  # the frame's mouth box from (the clip's mean mouth box, code)
    rec_frames: int = 4  # frames per clip `rec` runs on
    # Rendering (use-time keys): 1 = the nearest target frame itself; k > 1 = the flow's blend
    # of the k nearest target frames' latents, softmax weights of cosine similarity / temperature.
    top_k: int = 1
    temperature: float = 0.05

    def __post_init__(self) -> None:
        if self.code_dim < 1 or self.width < 1 or self.top_k < 1:
            raise ValueError(f"mc.code_dim, mc.width and mc.top_k must be >= 1, got {self}")
        for name in ("w_cls", "w_confusion", "w_rec", "temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"mc.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class MouthFlowConfig:
    """The landmark-driven mouth flow (`models.mouthflow`): a conditional Glow (the `flow`
    section; its `image_size` is the side of the lower-face crop) on pairs of frames of one clip.
    The condition is the crop warped to the wanted mouth shape and the wanted inner-lip mask."""

    cond_channels: int = 16  # channels of the condition features every coupling net reads
    rec_weight: float = 20.0  # weight of the cross-frame reconstruction (per-pixel L1)
    mouth_weight: float = 4.0  # extra weight of reconstruction errors inside the new mouth
    partners: int = 4  # partner frames drawn per frame of a clip (pairs per clip: T x partners)
    augment: bool = True  # the same random flip, colour, scale and rotation for a pair's images
    # How much of the target's own latent deviation a decode keeps (a use-time key): 0 decodes
    # the new geometry's prior mode, 1 all of the target's own deviation.
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.cond_channels, int) or self.cond_channels < 1:
            raise ValueError(f"mouthflow.cond_channels must be >= 1, got {self.cond_channels}")
        if not isinstance(self.partners, int) or self.partners < 1:
            raise ValueError(f"mouthflow.partners must be >= 1, got {self.partners}")
        for name in ("rec_weight", "mouth_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"mouthflow.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"mouthflow.temperature must be in [0, 2], got {self.temperature}")
