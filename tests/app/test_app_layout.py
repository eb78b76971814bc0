"""The page's wiring without a browser: offline launch settings, one queue slot for every model
run, failures as one line, and the `factorflow app` command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from factorflow.app.layout import QUEUE, message
from factorflow.app.settings import OFFLINE_ENV, AppSettings
from factorflow.cli.main import build_parser

gr = pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")


def test_launch_is_local_and_offline(tmp_path: Path) -> None:
    from factorflow.app.server import launch_kwargs

    kwargs = launch_kwargs(AppSettings(workdir=tmp_path, max_upload_mb=3))
    assert kwargs["server_name"] == "127.0.0.1" and kwargs["share"] is False
    assert kwargs["max_file_size"] == 3 * 1024 * 1024
    assert kwargs["run_history"] is False
    for key, value in OFFLINE_ENV.items():
        assert os.environ[key] == value
    fonts = kwargs["theme"]._font + kwargs["theme"]._font_mono
    assert all(font.stylesheet()["url"] is None for font in fonts)  # no web fonts


def test_model_runs_share_one_queue_slot(tmp_path: Path) -> None:
    from factorflow.app.layout import build_app

    app = build_app(AppSettings(workdir=tmp_path))
    assert app.analytics_enabled is False
    runs = {f.name: f for f in app.fns.values() if f.name in ("on_run", "on_benchmark")}
    assert set(runs) == {"on_run", "on_benchmark"}
    for fn in runs.values():
        assert fn.concurrency_id == QUEUE and fn.concurrency_limit == 1


def test_failures_are_one_line() -> None:
    assert message(ValueError("clip.mp4 is not a video")) == "**Error:** clip.mp4 is not a video"
    line = message(RuntimeError("boom"))
    assert "internal error (RuntimeError: boom)" in line and "\n" not in line


def test_command_line() -> None:
    args = build_parser().parse_args(["app"])
    assert (args.host, args.port, args.checkpoint) == ("127.0.0.1", 7860, [])
    assert args.max_upload_mb == 200 and args.max_seconds == 60
    args = build_parser().parse_args(["app", "--port", "9000", "--checkpoint", "runs/a", "runs/b"])
    assert args.port == 9000 and args.checkpoint == [Path("runs/a"), Path("runs/b")]


def test_a_busy_port_is_one_line(capsys: pytest.CaptureFixture) -> None:
    import socket

    from factorflow.cli.main import main

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["app", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port} (Address already in use)" in err
    assert main(["app", "--checkpoint", "no/such/run"]) == 2
    assert "--checkpoint no/such/run does not exist" in capsys.readouterr().err


def test_the_mouth_flow_is_the_default_and_takes_no_motion_mode(tmp_path: Path) -> None:
    from factorflow.app.layout import build_app
    from factorflow.app.sources import model_choices

    app = build_app(AppSettings(workdir=tmp_path))
    shown = {getattr(b, "label", None): b for b in app.blocks.values()}
    model, motion = shown["model"], next(b for b in app.blocks.values() if b.elem_id == "motion")
    labels = list(model_choices())
    assert model.value == labels[0] and labels[0].startswith("mouthflow (shipped: mouth flow")
    assert motion.visible is False and motion.value == "r"
    # The benchmark judges flow models on synthetic crops: no mouth flow in its list.
    bench = [name for name, _ in shown["trained model"].choices]
    assert bench == labels[1:] and shown["trained model"].value == labels[-1]
    update = next(f for f in app.fns.values() if f.name == "motion_update").fn
    assert update(labels[1]).visible is True  # real-af takes af.motion
    assert update(labels[0]).visible is False
