"""Synthetic talking faces with ground truth: the benchmark every reenactment metric is measured on.

Each speaker is an `Identity` (face shape, skin, hair style and colour, eyes, brows, nose, mouth and
lips, ears, clothes, background, glasses). A clip is one speaker saying one word: a `Pose` and a
`Lighting` fixed for the clip and a mouth state per frame (`MOUTH_FACTORS`). Mouth factors are
relative to the speaker's own mouth, so one trajectory is "the same speech" on any face: that is
the ground truth `SynthMeta.render_reenactment` renders. Everything is drawn from the seed, and any
frame can be re-rendered exactly from meta.json.

Layout written by `generate` / `factorflow synth --out DIR`::

    DIR/{train,val,test}/WORD/WORD_{clip:05d}_{frame:02d}.png  RGB frames (LRW frame layout)
    DIR/masks/{split}/WORD/WORD_{clip:05d}.npz  np.load(f)["masks"]: uint8 [T,H,W] in {0,1},
                                                the mouth region of each frame
    DIR/meta.json

train and val hold clips of training speakers, test only clips of held-out speakers. Clip numbers
count from 0 within each split's WORD folder.

meta.json ("format": "factorflow-synth/1")::

    format        "factorflow-synth/1"
    size, frames  frame side in pixels, frames per clip
    fps           25
    seed          the seed everything was drawn from
    settings      {"speakers", "words", "clips_per_pair", "test_speakers", "val_fraction"}
    words         sorted list of the words used
    mouth_factors ["opening", "width", "rounding", "teeth", "smile"]
    mask_layout   where the masks are and what they hold (the line above)
    speakers      {id: {"split": "train"|"test",
                        "identity": {every Identity field; colours as [r, g, b]},
                        "style": {"speed", "amplitude"}}}
    clips         [{"split", "word", "clip" (index within the split's WORD folder), "speaker",
                    "pose": {"dx", "dy", "angle", "scale"},
                    "lighting": {"gain", "tint": [r, g, b], "shade_angle", "shade_strength"},
                    "mouth": [[opening, width, rounding, teeth, smile] per frame],
                    "files": [frame paths relative to DIR], "mask": masks path relative to DIR}]

Positions and lengths in Identity and Pose are fractions of the frame side; see `factors` for each
field and `words` for the vocabulary and how words become mouth trajectories.
"""

from factorflow.data.synth.factors import (
    HAIR_STYLES,
    MOUTH_FACTORS,
    MOUTH_RANGES,
    Identity,
    Lighting,
    Pose,
    sample_identity,
    sample_lighting,
    sample_pose,
)
from factorflow.data.synth.generate import default_test_speakers, generate, plan
from factorflow.data.synth.meta import FORMAT, ClipMeta, SpeakerMeta, SynthMeta
from factorflow.data.synth.render import FaceRenderer, render_clip, render_frame
from factorflow.data.synth.sheet import contact_sheet
from factorflow.data.synth.words import VOCABULARY, SpeakingStyle, visemes, word_trajectory

__all__ = [
    "FORMAT",
    "HAIR_STYLES",
    "MOUTH_FACTORS",
    "MOUTH_RANGES",
    "VOCABULARY",
    "ClipMeta",
    "FaceRenderer",
    "Identity",
    "Lighting",
    "Pose",
    "SpeakerMeta",
    "SpeakingStyle",
    "SynthMeta",
    "contact_sheet",
    "default_test_speakers",
    "generate",
    "plan",
    "render_clip",
    "render_frame",
    "sample_identity",
    "sample_lighting",
    "sample_pose",
    "visemes",
    "word_trajectory",
]
