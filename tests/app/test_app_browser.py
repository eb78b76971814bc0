"""The app in a real browser: headless Chromium from the system's package (never a downloaded
browser build), driven by Playwright for Python. The app runs in this process on a free port of
127.0.0.1; every request the page makes to any other host is blocked and fails the test.

FACTORFLOW_APP_SCREENSHOT=docs/img/app.png saves a screenshot of the finished run there.
FACTORFLOW_CHROMIUM names another Chromium binary (default /usr/bin/chromium). Without Chromium,
playwright or gradio the module skips, saying which is missing; FACTORFLOW_REQUIRE_BROWSER=1 (set
by .ci/run) turns that skip into an error.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

CHROMIUM = Path(os.environ.get("FACTORFLOW_CHROMIUM", "/usr/bin/chromium"))
LOCAL = {"127.0.0.1", "localhost"}
RUN_TIMEOUT_MS = 120_000

REQUIRED = os.environ.get("FACTORFLOW_REQUIRE_BROWSER") == "1"  # CI: fail, do not skip


def _missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        return "the app extra (gradio) is not installed: pip install 'factorflow[app]'"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed: pip install playwright (no browser download needed)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set FACTORFLOW_CHROMIUM)"
    return None


if _missing() is not None:
    if REQUIRED:
        raise RuntimeError(f"FACTORFLOW_REQUIRE_BROWSER=1 but {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)

from playwright import sync_api  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a free port of 127.0.0.1; while it runs, any connection this process opens
    to another address is refused and recorded (no analytics, version check or hub call)."""
    from factorflow.app.server import launch
    from factorflow.app.settings import AppSettings

    # A 1 MB upload limit: the test's own files are smaller, `big.mp4` is not.
    settings = AppSettings(
        port=_free_port(), workdir=tmp_path_factory.mktemp("app"), max_upload_mb=1
    )
    outside: list[str] = []
    connect = socket.socket.connect

    def local_only(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            outside.append(str(address))
            raise OSError(f"test: no connection outside 127.0.0.1 ({address})")
        connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", local_only)
        app = launch(settings)
        assert urlparse(app.local_url).hostname == "127.0.0.1"
        yield app.local_url
        app.close()
    assert not outside, f"the app connected outside 127.0.0.1: {outside}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


class Visit:
    """A browser context on the app that blocks and records requests to any other host."""

    def __init__(self, browser: Any, url: str) -> None:
        self.outside: list[str] = []
        self.context = browser.new_context(
            viewport={"width": 1200, "height": 900}, accept_downloads=True
        )
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.goto(url)
        self.page.wait_for_selector("#run", timeout=30_000)

    def _route(self, route: Any) -> None:
        if urlparse(route.request.url).hostname in LOCAL:
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def upload(self, target: Path, driver: Path) -> None:
        self.page.set_input_files("#target-image input[type=file]", str(target))
        self.page.set_input_files("#driver input[type=file]", str(driver))
        self.page.wait_for_selector("#target-image img", timeout=30_000)

    def run(self, expect: str) -> str:
        self.page.click("#run")
        status = self.page.wait_for_selector(
            f"#status:has-text('{expect}')", timeout=RUN_TIMEOUT_MS
        )
        return status.inner_text()

    def close(self) -> None:
        self.context.close()
        assert not self.outside, f"the page reached outside 127.0.0.1: {self.outside}"


@pytest.fixture
def visit(browser: Any, app_url: str) -> Iterator[Visit]:
    v = Visit(browser, app_url)
    yield v
    v.close()


PLAY = """async () => {
  const v = document.querySelector('#result video');
  v.loop = false; v.muted = true; v.currentTime = 0;
  await v.play();
  const start = v.currentTime;
  await new Promise(r => setTimeout(r, 200));
  return {duration: v.duration, start, later: v.currentTime, error: v.error && v.error.code};
}"""


SEEK = """async (t) => {
  for (const sel of ['#driver video', '#result video']) {
    const v = document.querySelector(sel);
    v.pause();
    await new Promise(r => { v.addEventListener('seeked', r, {once: true}); v.currentTime = t; });
  }
}"""
OPEN_PEAK_S = 0.3  # carphone_open.mp4's widest mouth (frame 9 at 30 fps)


def test_two_users_run_play_and_download(
    browser: Any, app_url: str, media: dict, tmp_path: Path
) -> None:
    """Two users press run at once with the default model (the shipped mouth flow): both are
    served (queued, one at a time); the first one's result plays in the page and downloads as an
    mp4 with one frame per driver frame; the mouth flow's figures are shown, its motion-mode
    control is not."""
    import av

    first, second = visits = [Visit(browser, app_url) for _ in range(2)]
    try:
        for v in visits:
            assert not v.page.is_visible("#motion")  # the mouth flow takes no motion mode
            v.upload(media["target"], media["open_driver"])
            v.page.wait_for_selector("#driver video", timeout=30_000)
        for v in visits:
            v.page.click("#run")
        for v in visits:
            v.page.wait_for_selector("#status:has-text('Done')", timeout=2 * RUN_TIMEOUT_MS)
        assert second.page.query_selector("#result video") is not None
        played = first.page.evaluate(PLAY)
        assert played["error"] is None and played["duration"] > 0, played
        assert played["later"] > played["start"], played  # the video element plays
        figures = first.page.inner_text("#figures")
        for label in ("mouth opening correlation", "opening range, output / driver", "sharpness"):
            assert label in figures
        assert first.page.query_selector("#plot img") is not None
        with first.page.expect_download() as download:
            first.page.click("#download")
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.suffix == ".mp4"
        with av.open(str(saved)) as container:
            assert "mp4" in container.format.name
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert sum(1 for _ in container.decode(stream)) == media["open_frames"]
        shot = os.environ.get("FACTORFLOW_APP_SCREENSHOT")
        if shot:  # driver and result paused at the driver's most open moment
            first.page.evaluate(SEEK, OPEN_PEAK_S)
            _screenshot(first.page, Path(shot))
    finally:
        for v in visits:
            v.close()


def test_bad_uploads_show_an_error(visit: Visit, media: dict, tmp_path: Path) -> None:
    visit.upload(media["target"], media["text"])
    text = visit.run("Error")
    assert "notes.mp4 is not a video" in text
    assert "Traceback" not in visit.page.content()
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))
    visit.page.reload()
    visit.page.set_input_files("#driver input[type=file]", str(big))
    visit.page.wait_for_selector("text=exceed the maximum allowed size", timeout=30_000)


def test_bundled_examples_fill_the_inputs(visit: Visit) -> None:
    from factorflow.app.sources import examples

    bundled = examples()
    if not bundled:
        pytest.skip("no bundled example clips installed")
    for example in bundled[:3]:
        visit.page.get_by_text(example.name).click()
        visit.page.wait_for_selector("#driver video", timeout=30_000)
        shown = "#target-video video" if example.target.suffix == ".mp4" else "#target-image img"
        visit.page.wait_for_selector(shown, state="visible", timeout=30_000)


def _screenshot(page: Any, out: Path) -> None:
    """The whole page at 60% and 160 colours: small enough to keep in git."""
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(page.screenshot(full_page=True))).convert("RGB")
    image = image.resize((image.width * 3 // 5, image.height * 3 // 5), Image.LANCZOS)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(160, dither=Image.Dither.NONE).save(out, optimize=True)
