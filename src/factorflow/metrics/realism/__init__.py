"""Judges of mouth realism on real video (EVALUATION.md section 4), one module each.

Every judge takes uint8 frames [T,H,W,3] and MediaPipe landmarks [T, 478, 2] (NaN rows where no
face) and returns a dict of figures; mouth crops are taken at the mouth flow's own alignment and
size (`crops`).
- `two_sample_test`: real vs generated crops, balanced held-out accuracy over disjoint groups
  (0.5 = indistinguishable), with a bootstrap interval;
- `grid_ratio`: the squeeze grid's period-2 energy over real mouths' at the same opening (1 = real);
- `lip_preservation`: lip area and contrast against the target's own lips (1 = kept);
- `temporal_stability`: mouth change on the driver's quiet frames over the driver's own (1 = as
  steady as a real clip; >> 1 flicker; ~0 frozen);
- `identity_distance`: dlib face-embedding distance to the target (the `identity` extra; < 0.6
  same person).
"""

from factorflow.metrics.realism.grid import grid_energy, grid_ratio
from factorflow.metrics.realism.identity import identity_distance
from factorflow.metrics.realism.identity import missing as identity_missing
from factorflow.metrics.realism.lips import lip_preservation
from factorflow.metrics.realism.temporal import mouth_change, temporal_stability
from factorflow.metrics.realism.twosample import Clip, jittered, two_sample_crops, two_sample_test

__all__ = [
    "Clip",
    "grid_energy",
    "grid_ratio",
    "identity_distance",
    "identity_missing",
    "jittered",
    "lip_preservation",
    "mouth_change",
    "temporal_stability",
    "two_sample_crops",
    "two_sample_test",
]
