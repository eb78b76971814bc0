"""The page: a Reenact tab and a Benchmark tab (Gradio Blocks), wired to `run` and `benchmark`.

Handlers never let an exception reach Gradio: bad input (an InputError, or the pipeline's
ValueError naming the clip) becomes one line in the page's status box; anything else is logged
with its traceback on the server and shown as one line too. Both tabs' runs share one queue
slot (`concurrency_id`), so users are served one at a time, in order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factorflow.app.benchmark import MAX_PAIRS, run_benchmark
from factorflow.app.run import FORMATS, MOTIONS, RunRequest, figures_markdown, run_reenactment
from factorflow.app.settings import AppSettings, import_gradio
from factorflow.app.sources import (
    ModelCache,
    examples,
    model_choices,
    model_spec,
)
from factorflow.app.validate import InputError

__all__ = ["Page", "build_app", "message"]

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


@dataclass
class Page:
    """What every section of the page needs: Gradio, the settings, the model choices (label ->
    source) and the loaded-model cache."""

    gr: Any
    settings: AppSettings
    choices: dict[str, Any]
    models: ModelCache

    @property
    def labels(self) -> list[str]:
        return list(self.choices)  # the first (the shipped mouth flow) is the default

    @property
    def bench_labels(self) -> list[str]:
        # The benchmark judges 64x64 crops of the synthetic set: flow models only, not mouth flows.
        return [
            label
            for label in self.labels
            if model_spec(self.choices[label]).pipeline != "mouth-paste"
        ]

    def takes_motion(self, label: str) -> bool:
        return (
            label in self.choices and "af.motion" in model_spec(self.choices[label]).use_time_keys
        )

    def motion_update(self, label: str) -> Any:
        # Residual motion by default where the model takes it: on carphone driving single_face
        # it doubles the opening correlation of the shipped real-face AF (README "Web app").
        # A model that takes no motion mode (a mouth flow) hides the control.
        takes = self.takes_motion(label)
        return self.gr.Radio(visible=takes, interactive=takes, value="residual" if takes else "r")


def build_app(settings: AppSettings) -> Any:
    """The gradio.Blocks of the app (not launched)."""
    gr = import_gradio()
    page = Page(gr, settings, model_choices(settings.checkpoints), ModelCache(settings.device))
    with gr.Blocks(title="factorflow", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(INTRO)
        with gr.Tab("Reenact"):
            model, motion = reenact_tab(page)
        with gr.Tab("Benchmark"):
            benchmark_tab(page)
        app.load(page.motion_update, model, motion, queue=False)
    return app


def reenact_handler(page: Page) -> Any:
    """The Reenact button: a run of `run_reenactment`, its failure as one line."""
    gr = page.gr

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
                model=page.choices[label],
                motion=motion,
                side_by_side=bool(side),
                fmt=fmt,
            )
            result = run_reenactment(
                request, page.settings, page.models, lambda f, what: progress(f, desc=what)
            )
        except Exception as exc:  # every failure becomes a line in the page
            return message(exc), None, hidden, "", None
        done = f"**Done:** {result.download.name}"
        button = gr.DownloadButton(value=str(result.download), visible=True)
        return done, str(result.video), button, figures_markdown(result), str(result.plot)

    return on_run


def benchmark_handler(page: Page) -> Any:
    """The Evaluate button: `run_benchmark` on a flow model, its failure as one line."""
    gr = page.gr

    def on_benchmark(label, data, pairs, baselines, motion, progress=gr.Progress()):  # noqa: B008
        hidden = gr.DownloadButton(value=None, visible=False)
        try:
            if label not in page.bench_labels:
                raise InputError("choose a trained model: the benchmark takes a flow model")
            result = run_benchmark(
                page.choices[label],
                data,
                int(pairs),
                baselines,
                page.settings,
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

    return on_benchmark


def target_inputs(gr: Any) -> tuple[Any, Any, Any]:
    """The target face as a photo (upload or webcam) or a video, one tab each -> (tabs, image,
    video); a new target of one kind replaces the other, and the tab follows what is set."""
    with gr.Tabs() as tabs:
        with gr.Tab("target: photo", id="photo"):
            image = gr.Image(
                label="target face (photo)",
                type="filepath",
                format="png",
                sources=["upload", "webcam"],
                elem_id="target-image",
            )
        with gr.Tab("target: video", id="video"):
            video = gr.Video(
                label="target face (video)", sources=["upload"], elem_id="target-video"
            )
    return tabs, image, video


def wire_targets(gr: Any, tabs: Any, image: Any, video: Any) -> None:
    """A new target of one kind replaces the other (the run takes whichever is set), and an
    example with a target video shows the video tab, one with a photo the photo tab."""
    image.upload(lambda: None, outputs=video, queue=False)
    video.upload(lambda: None, outputs=image, queue=False)
    for given, tab in ((image, "photo"), (video, "video")):
        given.change(
            lambda value, tab=tab: gr.Tabs(selected=tab) if value else gr.Tabs(),
            given,
            tabs,
            queue=False,
        )


def bundled_examples(gr: Any, image: Any, video: Any, driver: Any) -> None:
    """The bundled (target, driver) examples, one click each."""
    bundled = examples()
    if not bundled:
        return
    still = [e.target.suffix.lower() in (".png", ".jpg", ".jpeg") for e in bundled]
    gr.Examples(
        examples=[
            [str(e.target) if s else None, None if s else str(e.target), str(e.driver)]
            for e, s in zip(bundled, still, strict=True)
        ],
        example_labels=[e.name for e in bundled],
        inputs=[image, video, driver],
        label="bundled examples (one click)",
    )


def reenact_tab(page: Page) -> tuple[Any, Any]:
    """The Reenact tab: target, driver and result; model and options; status, download, the
    lip-sync figures and the opening plot; the examples -> (model dropdown, motion control)."""
    gr, labels = page.gr, page.labels
    with gr.Row(equal_height=True):
        with gr.Column():
            target_tabs, target_image, target_video = target_inputs(gr)
        driver = gr.Video(label="driving clip", sources=["upload"], elem_id="driver")
        result = gr.Video(
            label="result", interactive=False, autoplay=True, loop=True, elem_id="result"
        )
    with gr.Row():
        model = gr.Dropdown(labels, value=labels[0], label="model", scale=2)
        motion = gr.Radio(
            list(MOTIONS),
            value="residual" if page.takes_motion(labels[0]) else "r",
            visible=page.takes_motion(labels[0]),
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
    bundled_examples(gr, target_image, target_video, driver)
    wire_targets(gr, target_tabs, target_image, target_video)
    model.change(page.motion_update, model, motion, queue=False)
    run.click(
        reenact_handler(page),
        inputs=[target_image, target_video, driver, model, motion, side, fmt],
        outputs=[status, result, download, figures, plot],
        concurrency_id=QUEUE,
        concurrency_limit=1,
    )
    return model, motion


def benchmark_tab(page: Page) -> None:
    """The Benchmark tab: `evaluate` on a few pairs of a flow model, its table and contact sheet."""
    from factorflow.metrics.baselines import BASELINES

    gr, bench_labels = page.gr, page.bench_labels
    gr.Markdown(BENCH_INTRO)
    with gr.Row():
        model = gr.Dropdown(
            bench_labels,
            value=bench_labels[-1] if bench_labels else None,
            label="trained model",
            scale=2,
        )
        data = gr.Textbox(
            label="data: a `factorflow synth` folder (blank: the demo's synthetic set, "
            "generated once)",
            value=_default_data(),
            scale=2,
        )
        pairs = gr.Slider(1, MAX_PAIRS, value=8, step=1, label="pairs")
    with gr.Row():
        baselines = gr.CheckboxGroup(
            list(BASELINES), value=["copy-target", "pixel-paste"], label="baselines"
        )
        motion = gr.Radio(list(MOTIONS), value="r", label="motion (af.motion)")
    run = gr.Button("Evaluate", variant="primary", elem_id="bench-run")
    status = gr.Markdown(elem_id="bench-status")
    sheet = gr.Image(label="contact sheet", type="filepath", interactive=False)
    table = gr.Markdown()
    report = gr.DownloadButton("Download report (JSON)", visible=False)
    model.change(
        lambda label: gr.Radio(interactive=page.takes_motion(label), value="r"),
        model,
        motion,
        queue=False,
    )
    run.click(
        benchmark_handler(page),
        inputs=[model, data, pairs, baselines, motion],
        outputs=[status, table, sheet, report],
        concurrency_id=QUEUE,
        concurrency_limit=1,
    )


def _default_data() -> str:
    """`make demo`'s dataset when this folder has one, else blank."""
    demo = Path("runs/demo/data")
    return str(demo) if (demo / "meta.json").is_file() else ""
