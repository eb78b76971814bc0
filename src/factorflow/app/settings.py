"""Settings, the offline Gradio import and the environment they set (imported by the app's
other modules; the launch is `app.server`).

Offline means: no analytics or version check (GRADIO_ANALYTICS_ENABLED=False and
`analytics_enabled=False`), no Hugging Face telemetry or hub look-ups (HF_HUB_OFFLINE,
HF_HUB_DISABLE_TELEMETRY), no share link, no run history, system fonts only (no web-font
stylesheet), and the server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

__all__ = ["OFFLINE_ENV", "AppSettings", "import_gradio"]

OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "True",
    "GRADIO_RUN_HISTORY": "False",
}


@dataclass(frozen=True)
class AppSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    checkpoints: tuple[Path, ...] = ()  # run folders offered beside the shipped models
    max_upload_mb: float = 200.0
    max_seconds: float = 60.0  # longest driver or target clip
    min_side: int = 128  # shortest image side in pixels: a smaller face cannot fill a crop
    device: str = "cpu"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="factorflow-app-")))

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0 or self.max_seconds <= 0 or self.min_side < 1:
            raise ValueError(
                f"upload limit {self.max_upload_mb} MB, clip limit {self.max_seconds} s and "
                f"minimum side {self.min_side} px must all be positive"
            )


def import_gradio() -> ModuleType:
    """Gradio, imported with analytics and telemetry off; a clear error without the extra."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import gradio
    except ImportError as exc:
        raise ImportError(
            f"the web app needs the app extra: pip install 'factorflow[app]' ({exc})"
        ) from None
    return gradio
