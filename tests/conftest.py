"""Shared fixtures: an app per session with its own cache directory, a
TestClient on it, a live server for the browser, and Debian's Chromium driven
by Playwright."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


# One analysis cache directory for the whole run, also for apps that test
# modules build at import time (schemathesis): analyses are traced once.
TEST_CACHE_DIR = Path(os.environ.setdefault("CONVZOO_TEST_CACHE_DIR", tempfile.mkdtemp(prefix="convzoo-test-")))


def make_settings(**overrides) -> Settings:
    return Settings(**{"cache_dir": TEST_CACHE_DIR, "warm_cache": False, "device": "cpu", **overrides})


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return TEST_CACHE_DIR


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The session's app served on loopback, for the browser."""
    with serving(app) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class PageWatch:
    """What a page did that a test should refuse: console errors, uncaught
    exceptions, and any request that left the live server."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        self.expected_errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))
        page.on("request", self._on_request)

    def _on_request(self, request) -> None:
        url = request.url
        if not (url.startswith(self.base_url) or url.startswith("data:") or url.startswith("blob:")):
            self.foreign_requests.append(url)

    def expect_console_error(self, text: str) -> None:
        """Allow console errors containing ``text`` in this test only, e.g.
        Chromium's "Failed to load resource: ... 404" for a 404 page."""
        self.expected_errors.append(text)

    def assert_clean(self) -> None:
        unexpected = [e for e in self.console_errors if not any(x in e for x in self.expected_errors)]
        assert unexpected == [], unexpected
        assert self.foreign_requests == [], self.foreign_requests

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def page(browser, live_server) -> Iterator[PageWatch]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watch = PageWatch(context.new_page(), live_server)
    yield watch
    context.close()


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    """Real photos shipped in installed packages (scikit-image, matplotlib)."""
    import matplotlib.cbook
    import skimage

    data = Path(skimage.__file__).parent / "data"
    found = {name: data / f"{name}.{ext}" for name, ext in (
        ("chelsea", "png"), ("coffee", "png"), ("astronaut", "png"), ("rocket", "jpg"), ("camera", "png"))}
    found["motorcycle"] = data / "motorcycle_left.png"
    found["animated_gif"] = data / "no_time_for_that_tiny.gif"
    found["grace_hopper"] = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return found


def analyse_course_models(app) -> None:
    """The catalog lists cards without analysing anything; tests that read the
    counts of the course's 92 models (every zoo id but timm-<arch>) analyse them
    first, once per session's cache."""
    from models.registry import list_models

    cache = app.state.analysis_cache
    for entry in list_models():
        if entry.timm is None:
            cache.get(entry)
