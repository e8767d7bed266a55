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
from hypothesis.internal import lambda_sources

from app.config import Settings
from app.main import create_app
from models.weights import set_trained_weights_dir

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


# One analysis cache directory for the whole run, also for apps that test
# modules build at import time (schemathesis): analyses are traced once.
TEST_CACHE_DIR = Path(os.environ.setdefault("CONVZOO_TEST_CACHE_DIR", tempfile.mkdtemp(prefix="convzoo-test-")))
# LeNet-5 is trained once per test session, into the session's cache.
set_trained_weights_dir(TEST_CACHE_DIR / "weights")


def _lambda_description_or_unknown(function, *args, **kwargs):
    """Hypothesis parses a lambda's source only to describe it. CPython 3.11.7's ast.parse may raise
    SystemError "AST constructor recursion depth mismatch" deep in a stack (python/cpython#106905, fixed in
    3.11.8), which failed the schemathesis test's collection at random; a lambda it cannot describe is
    described as unknown instead, as Hypothesis does for one whose source it cannot find."""
    try:
        return _describe_lambda(function, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


_describe_lambda = lambda_sources._lambda_description
lambda_sources._lambda_description = _lambda_description_or_unknown


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
    counts of the course's models (every zoo id but timm-<arch>) analyse them
    first, once per session's cache."""
    from models.registry import list_models

    cache = app.state.analysis_cache
    for entry in list_models():
        if entry.timm is None:
            cache.get(entry)


@pytest.fixture(scope="session")
def held_out_digits():
    """scikit-learn's handwritten digits that LeNet-5 never trained on
    (images (450, 8, 8) in [0, 1], labels (450,)), by the training's own split."""
    from sklearn.model_selection import train_test_split

    from models.digits import load_digit_data
    from models.lenet_training import RECIPE

    images, labels = load_digit_data()
    _, x_test, _, y_test = train_test_split(images, labels, test_size=RECIPE["held_out"],
                                            random_state=RECIPE["split_seed"], stratify=labels)
    return x_test, y_test


def digit_photo(digit, *, dark_on_light: bool, seed: int, size: tuple[int, int] = (480, 360),
                digit_px: int = 120, angle: float = 6.0, lighting: str = "even") -> bytes:
    """A JPEG "photo" of a real handwritten digit (an 8x8 scikit-learn digit,
    (8, 8) in [0, 1]): enlarged to ``digit_px``, inked onto paper with a
    tint and sensor noise, at a random place in the frame, turned by up to
    ``angle`` degrees; ``dark_on_light`` False gives a chalk-on-blackboard
    negative. ``lighting``: "even" (a gentle gradient, grey 195..235),
    "gradient" (a lamp's falloff in a random direction, the paper from grey
    ~170 to ~240) or "shadow" (a soft dark shadow over one corner, the
    light there down to 30-45%); light falls on paper and ink alike."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    ink = np.asarray(Image.fromarray(np.round(digit * 255).astype(np.uint8)).resize(
        (digit_px, digit_px), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    yy, xx = np.mgrid[0:height, 0:width]
    layer = np.zeros((height, width), np.float32)
    top, left = rng.integers(8, height - digit_px - 8), rng.integers(8, width - digit_px - 8)
    layer[top:top + digit_px, left:left + digit_px] = np.clip(ink, 0, 1)
    turn = rng.uniform(-angle, angle)
    if lighting == "even":
        paper = 210 + 25 * xx / width - 15 * yy / height + rng.normal(0, 6, (height, width))
        grey = paper * (1 - layer) + 35 * layer
        if not dark_on_light:
            grey = 255 - grey
    else:
        direction = rng.uniform(0, 2 * np.pi)
        along = (np.cos(direction) * (xx - width / 2) + np.sin(direction) * (yy - height / 2))
        along = (along - along.min()) / np.ptp(along)
        if lighting == "gradient":
            light = (170 + 70 * along) / 240
        elif lighting == "shadow":
            corner_y, corner_x = rng.choice([0, height]), rng.choice([0, width])
            reach = rng.uniform(0.45, 0.7) * min(width, height)
            distance = np.hypot(yy - corner_y, xx - corner_x)
            shade = 1 / (1 + np.exp((distance - reach) / (0.06 * min(width, height))))
            light = (0.9 + 0.1 * along) * (1 - rng.uniform(0.55, 0.7) * shade)
        else:
            raise ValueError(f"unknown lighting {lighting!r}")
        # The page turns under the lamp, not the light with it: no corner wedges of another light.
        layer = np.asarray(Image.fromarray(layer).rotate(turn, resample=Image.Resampling.BILINEAR), np.float32)
        turn = 0.0
        paper, mark = (240, 35) if dark_on_light else (30, 225)
        grey = light * (paper * (1 - layer) + mark * layer) + rng.normal(0, 6, (height, width))
    rgb = np.clip(np.stack([grey, grey * 0.97, grey * 0.92], -1), 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb).rotate(turn, resample=Image.Resampling.BILINEAR,
                                        fillcolor=tuple(int(v) for v in rgb[0, 0]))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def make_digit_photo():
    """``digit_photo`` (above), for tests to call."""
    return digit_photo


WEIGHTS_CHUNK = 64 * 1024


@contextmanager
def _weights_server(files: dict[str, tuple[bytes, int]]) -> Iterator[str]:
    """Serve ``files`` (name -> (body, announced Content-Length)) over HTTP on
    a free loopback port, in 64 KiB chunks 10 ms apart so that a download
    takes long enough to show progress; yields the base URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            name = self.path.rsplit("/", 1)[-1]
            if name not in files:
                self.send_error(404)
                return
            body, announced = files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(announced))
            self.end_headers()
            for start in range(0, len(body), WEIGHTS_CHUNK):
                self.wfile.write(body[start:start + WEIGHTS_CHUNK])
                self.wfile.flush()
                time.sleep(0.01)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/models"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def weights_server():
    """``with weights_server({name: (body, length)}) as base_url:`` a loopback file server."""
    return _weights_server


@pytest.fixture
def register_url_entry(monkeypatch):
    """Register, for one test, a catalog entry like squeezenet1_1 whose
    torchvision weights are downloaded from the given URL."""
    import dataclasses

    from torchvision.models._api import Weights

    from models import registry
    from models.registry import get_entry

    def register(model_id: str, url: str):
        base = get_entry("squeezenet1_1")
        weights = Weights(url=url, transforms=base.tv_weights.transforms, meta=base.tv_weights.meta)
        entry = dataclasses.replace(base, id=model_id, tv_weights=weights)
        monkeypatch.setitem(registry._REGISTRY, model_id, entry)
        return entry

    return register
