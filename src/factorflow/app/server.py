"""The launch of the app: local and offline (see `app.settings`)."""

from __future__ import annotations

from typing import Any

from factorflow.app.layout import build_app
from factorflow.app.settings import AppSettings, import_gradio

__all__ = ["launch", "launch_kwargs"]


def launch_kwargs(settings: AppSettings) -> dict[str, Any]:
    """Arguments of `Blocks.launch` that keep the app local and offline."""
    gr = import_gradio()
    font = [gr.themes.Font(name) for name in ("ui-sans-serif", "system-ui", "sans-serif")]
    mono = [gr.themes.Font(name) for name in ("ui-monospace", "monospace")]
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        "share": False,
        "quiet": True,
        "show_error": False,
        "run_history": False,
        "footer_links": [],
        "max_file_size": int(settings.max_upload_mb * 1024 * 1024),
        "allowed_paths": [str(settings.workdir)],
        "theme": gr.themes.Default(font=font, font_mono=mono),
    }


def launch(settings: AppSettings) -> Any:
    """Build the app, queue its runs one at a time and serve it in the background; returns the
    gradio.Blocks (`local_url` says where; `block_thread()` waits for Ctrl-C, `close()` stops)."""
    app = build_app(settings)
    app.queue(default_concurrency_limit=1, max_size=32)
    app.launch(prevent_thread_lock=True, **launch_kwargs(settings))
    return app
