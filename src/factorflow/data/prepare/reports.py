"""What `prepare` reports: one `VideoReport` per source, the run's `PrepareSummary`, and the
dataset's meta.json ("format": "factorflow-prepare/1")."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from factorflow.data.prepare.planning import Settings
from factorflow.face.align import TEMPLATE
from factorflow.io import strict_json

__all__ = ["FORMAT", "PrepareSummary", "VideoReport", "write_meta"]

FORMAT = "factorflow-prepare/1"


@dataclass
class VideoReport:
    """What happened to one input video.

    segments_dropped: labelled segments (e.g. GRID words) without enough frames with a face.
    mouth_jitter_px: spread of the mouth centre (midpoint of the mouth corners, raw landmarks) in
    crop pixels over the written frames, sqrt(var_x + var_y). Small means a steady crop.
    """

    source: str
    frames: int = 0
    detected: int = 0
    interpolated: int = 0
    dropped: int = 0
    clips: list[dict] = field(default_factory=list)
    fps: float = 0.0
    frame_size: tuple[int, int] = (0, 0)
    segments_dropped: int = 0
    mouth_jitter_px: float = float("nan")
    error: str | None = None

    @property
    def detection_rate(self) -> float:
        return self.detected / self.frames if self.frames else 0.0

    def line(self) -> str:
        if self.error:
            return f"{self.source}: FAILED: {self.error}"
        return (
            f"{self.source}: {len(self.clips)} clips, face in {self.detected}/{self.frames} "
            f"frames ({100 * self.detection_rate:.1f}%), {self.interpolated} interpolated, "
            f"{self.dropped} dropped, mouth jitter {self.mouth_jitter_px:.2f} px"
        )


@dataclass
class PrepareSummary:
    """All video reports of a `prepare` run."""

    out: str
    reports: list[VideoReport]

    @property
    def failed(self) -> list[VideoReport]:
        return [r for r in self.reports if r.error]

    @property
    def num_clips(self) -> int:
        return sum(len(r.clips) for r in self.reports)

    def text(self) -> str:
        head = (
            f"wrote {self.num_clips} clips from {len(self.reports) - len(self.failed)} of "
            f"{len(self.reports)} videos to {self.out}"
        )
        return "\n".join([head, *(r.line() for r in self.reports)])

    def nothing_written(self, source: str | os.PathLike) -> ValueError:
        """The one-line error of a run that wrote no clip (its output is not created)."""
        failed = self.failed
        if not failed:
            why = f"none of its {len(self.reports)} videos gave a clip"
        elif len(failed) == 1:
            why = failed[0].error
        else:
            why = f"all {len(failed)} videos failed, e.g. {failed[0].source}: {failed[0].error}"
        return ValueError(f"no clip written from {source}: {why}")


def write_meta(path: Path, summary: PrepareSummary, settings: Settings) -> None:
    """meta.json of the dataset: every clip with its split, word, number, speaker and source, and
    each video's report."""
    clips = [clip for report in summary.reports for clip in report.clips]
    meta = {
        "format": FORMAT,
        "size": settings.size,
        "frames": settings.frames,
        "template": TEMPLATE.tolist(),
        "words": sorted({c["word"] for c in clips}),
        "speakers": sorted({c["speaker"] for c in clips if c["speaker"]}),
        "clips": clips,
        "videos": [{k: v for k, v in asdict(r).items() if k != "clips"} for r in summary.reports],
    }
    path.write_text(strict_json(meta))  # a failed video's unmeasured jitter is null
