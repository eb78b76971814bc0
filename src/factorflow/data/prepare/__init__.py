"""Real-video preprocessing: face landmarks (MediaPipe), five-point similarity alignment to an
LRW-like framing, and `prepare` writing aligned crops in LRW frame layout.

MediaPipe and OpenCV (the `faces` extra) and PyAV (the `video` extra) are imported only when a
function needs them.
"""

from factorflow.data.prepare.align import (
    TEMPLATE,
    alignment_transforms,
    inverse,
    smooth_track,
    template_points,
    transform_points,
    umeyama,
    warp,
)
from factorflow.data.prepare.landmarks import (
    FaceMesh,
    detect_landmarks,
    five_points,
    inner_lip_opening,
    mouth_centre,
)
from factorflow.data.prepare.pipeline import (
    PrepareJob,
    PrepareSummary,
    Segment,
    VideoReport,
    plan_jobs,
    prepare,
    prepare_video,
)

__all__ = [
    "TEMPLATE",
    "FaceMesh",
    "PrepareJob",
    "PrepareSummary",
    "Segment",
    "VideoReport",
    "alignment_transforms",
    "detect_landmarks",
    "five_points",
    "inner_lip_opening",
    "inverse",
    "mouth_centre",
    "plan_jobs",
    "prepare",
    "prepare_video",
    "smooth_track",
    "template_points",
    "transform_points",
    "umeyama",
    "warp",
]
