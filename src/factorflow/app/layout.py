"""The page: a Reenact tab and a Benchmark tab (Gradio Blocks), wired to `run` and `benchmark`.

Handlers never let an exception reach Gradio: bad input (an InputError, or the pipeline's
ValueError naming the clip) becomes one line in the page's status box; anything else is logged
with its traceback on the server and shown as one line too. Both tabs' runs share one queue
slot (`concurrency_id`), so users are served one at a time, in order.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from factorflow.app.benchmark import MAX_PAIRS, run_benchmark
from factorflow.app.run import FORMATS, MOTIONS, RunRequest, figures_markdown, run_reenactment
from factorflow.app.server import AppSettings, import_gradio
from factorflow.app.sources import (
    ModelCache,
    examples,
    model_choices,
    model_spec,
)
from factorflow.app.validate import InputError

log = logging.getLogger(__name__)

INTRO = """# factorflow: mouth reenactment
Upload a **target face** (a photo or a video) and a **driving clip** of someone talking, or pick a
bundled example below; the target's mouth then moves as the driver's does. Everything runs on this
machine; nothing is uploaded anywhere else.
"""
BENCH_INTRO = """Evaluate a trained model against the synthetic benchmark's ground truth
(`factorflow evaluate`): PSNR and SSIM inside and outside the mouth, word accuracy and
mouth-opening correlation by judges trained on the fly, leakage probes. A few pairs give a quick
look; README's numbers use 24 or more.
"""
QUEUE = "factorflow-model"  # one queue slot for every run that uses a model


def message(exc: BaseException) -> str:
    """The one line shown for a failed run."""
    if isinstance(exc, ValueError | FileNotFoundError):
        return f"**Error:** {exc}"
    log.error("run failed", exc_info=exc)
    return f"**Error:** internal error ({type(exc).__name__}: {exc}); the server log has details"


def build_app(settings: AppSettings) -> Any:
    """The gradio.Blocks of the app (not launched)."""
    gr = import_gradio()
    from factorflow.metrics.baselines import BASELINES

    choices = model_choices(settings.checkpoints)
    models = ModelCache(settings.device)
    labels = list(choices)  # the first (the shipped mouth flow) is the default
    # The benchmark judges 64x64 crops of the synthetic set: flow models only, not mouth flows.
    bench_labels = [
        label for label in labels if model_spec(choices[label]).pipeline != "mouth-paste"
    ]

    def takes_motion(label: str) -> bool:
        return label in choices and "af.motion" in model_spec(choices[label]).use_time_keys

    def motion_update(label: str) -> Any:
        # Residual motion by default where the model takes it: on carphone driving single_face
        # it doubles the opening correlation of the shipped real-face AF (README "Web app").
        # A model that takes no motion mode (a mouth flow) hides the control.
        takes = takes_motion(label)
        return gr.Radio(visible=takes, interactive=takes, value="residual" if takes else "r")

    def on_run(
        target_image,
        target_video,
        driver,
        label,
        motion,
        side,
        fmt,
        progress=gr.Progress(),  # noqa: B008 (how Gradio hands a handler its progress bar)
    ):
        hidden = gr.DownloadButton(value=None, visible=False)
        try:
            request = RunRequest(
                target=target_video or target_image,
                driver=driver,
                model=choices[label],
                motion=motion,
                side_by_side=bool(side),
                fmt=fmt,
            )
            result = run_reenactment(
                request, settings, models, lambda f, what: progress(f, desc=what)
            )
        except Exception as exc:  # every failure becomes a line in the page
            return message(exc), None, hidden, "", None
        done = f"**Done:** {result.download.name}"
        button = gr.DownloadButton(value=str(result.download), visible=True)
        return done, str(result.video), button, figures_markdown(result), str(result.plot)

    def on_benchmark(label, data, pairs, baselines, motion, progress=gr.Progress()):  # noqa: B008
        hidden = gr.DownloadButton(value=None, visible=False)
        try:
            if label not in bench_labels:
                raise InputError("choose a trained model: the benchmark takes a flow model")
            result = run_benchmark(
                choices[label],
                data,
                int(pairs),
                baselines,
                settings,
                motion,
                lambda f, what: progress(f, desc=what),
            )
        except Exception as exc:
            return message(exc), "", None, hidden
        row = result.summary
        done = (
            f"**Done:** mouth-mask PSNR {row['psnr_mask']:.2f} dB, word accuracy ratio "
            f"{row['word_accuracy_ratio']:.2f}, opening r {row['opening_corr']:.2f}"
        )
        button = gr.DownloadButton(value=str(result.report), visible=True)
        return done, result.markdown, str(result.sheet), button

    with gr.Blocks(title="factorflow", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(INTRO)
        with gr.Tab("Reenact"):
            with gr.Row(equal_height=True):
                with gr.Column(), gr.Tabs() as target_tabs:
                    with gr.Tab("target: photo", id="photo"):
                        target_image = gr.Image(
                            label="target face (photo)",
                            type="filepath",
                            format="png",
                            sources=["upload", "webcam"],
                            elem_id="target-image",
                        )
                    with gr.Tab("target: video", id="video"):
                        target_video = gr.Video(
                            label="target face (video)", sources=["upload"], elem_id="target-video"
                        )
                driver = gr.Video(label="driving clip", sources=["upload"], elem_id="driver")
                result = gr.Video(
                    label="result",
                    interactive=False,
                    autoplay=True,
                    loop=True,
                    elem_id="result",
                )
            with gr.Row():
                model = gr.Dropdown(labels, value=labels[0], label="model", scale=2)
                motion = gr.Radio(
                    list(MOTIONS),
                    value="residual" if takes_motion(labels[0]) else "r",
                    visible=takes_motion(labels[0]),
                    label="motion (af.motion)",
                    info="r: the paper's relevant part; residual: r plus the driver's change "
                    "of structure (moves the mouth more)",
                    elem_id="motion",
                )
                side = gr.Checkbox(label="side by side: driver | target | result")
                fmt = gr.Radio(list(FORMATS), value="mp4", label="download as")
            run = gr.Button("Reenact", variant="primary", elem_id="run")
            status = gr.Markdown(elem_id="status")
            download = gr.DownloadButton("Download", visible=False, elem_id="download")
            with gr.Row():
                figures = gr.Markdown(elem_id="figures")
                plot = gr.Image(
                    label="mouth opening over time",
                    show_label=False,
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id="plot",
                )
            bundled = examples()
            if bundled:
                still = [e.target.suffix.lower() in (".png", ".jpg", ".jpeg") for e in bundled]
                gr.Examples(
                    examples=[
                        [str(e.target) if s else None, None if s else str(e.target), str(e.driver)]
                        for e, s in zip(bundled, still, strict=True)
                    ],
                    example_labels=[e.name for e in bundled],
                    inputs=[target_image, target_video, driver],
                    label="bundled examples (one click)",
                )
            # A new target of one kind replaces the other: the run takes whichever is set.
            target_image.upload(lambda: None, outputs=target_video, queue=False)
            target_video.upload(lambda: None, outputs=target_image, queue=False)
            # An example with a target video shows the video tab, one with a photo the photo tab.
            for given, tab in ((target_image, "photo"), (target_video, "video")):
                given.change(
                    lambda value, tab=tab: gr.Tabs(selected=tab) if value else gr.Tabs(),
                    given,
                    target_tabs,
                    queue=False,
                )
            model.change(motion_update, model, motion, queue=False)
            run.click(
                on_run,
                inputs=[target_image, target_video, driver, model, motion, side, fmt],
                outputs=[status, result, download, figures, plot],
                concurrency_id=QUEUE,
                concurrency_limit=1,
            )
        with gr.Tab("Benchmark"):
            gr.Markdown(BENCH_INTRO)
            with gr.Row():
                b_model = gr.Dropdown(
                    bench_labels,
                    value=bench_labels[-1] if bench_labels else None,
                    label="trained model",
                    scale=2,
                )
                b_data = gr.Textbox(
                    label="data: a `factorflow synth` folder (blank: the demo's synthetic set, "
                    "generated once)",
                    value=_default_data(),
                    scale=2,
                )
                b_pairs = gr.Slider(1, MAX_PAIRS, value=8, step=1, label="pairs")
            with gr.Row():
                b_baselines = gr.CheckboxGroup(
                    list(BASELINES), value=["copy-target", "pixel-paste"], label="baselines"
                )
                b_motion = gr.Radio(list(MOTIONS), value="r", label="motion (af.motion)")
            b_run = gr.Button("Evaluate", variant="primary", elem_id="bench-run")
            b_status = gr.Markdown(elem_id="bench-status")
            b_sheet = gr.Image(label="contact sheet", type="filepath", interactive=False)
            b_table = gr.Markdown()
            b_report = gr.DownloadButton("Download report (JSON)", visible=False)
            b_model.change(
                lambda label: gr.Radio(interactive=takes_motion(label), value="r"),
                b_model,
                b_motion,
                queue=False,
            )
            b_run.click(
                on_benchmark,
                inputs=[b_model, b_data, b_pairs, b_baselines, b_motion],
                outputs=[b_status, b_table, b_sheet, b_report],
                concurrency_id=QUEUE,
                concurrency_limit=1,
            )
        app.load(motion_update, model, motion, queue=False)
    return app


def _default_data() -> str:
    """`make demo`'s dataset when this folder has one, else blank."""
    demo = Path("runs/demo/data")
    return str(demo) if (demo / "meta.json").is_file() else ""
