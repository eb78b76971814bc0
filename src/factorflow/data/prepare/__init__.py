"""Real-video preprocessing: `prepare` writes aligned face crops in LRW frame layout, with each
frame's landmarks. The face geometry it uses (MediaPipe landmarks, the five-point alignment)
lives in `factorflow.face`.

MediaPipe and OpenCV (the `faces` extra) and PyAV (the `video` extra) are imported only when a
function needs them.
"""

from factorflow.data.prepare.pipeline import prepare, prepare_video
from factorflow.data.prepare.planning import PrepareJob, Segment, plan_jobs
from factorflow.data.prepare.reports import PrepareSummary, VideoReport

__all__ = [
    "PrepareJob",
    "PrepareSummary",
    "Segment",
    "VideoReport",
    "plan_jobs",
    "prepare",
    "prepare_video",
]
