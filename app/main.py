"""The app factory, and the composition root: the one core module that knows
every feature package (each brings its ``routes.router``). ``app`` at module
level is for uvicorn; tests build their own with
``create_app(Settings(cache_dir=tmp_path))``."""

from __future__ import annotations

import gc
import logging
import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import swagger_ui_bundle
import torch
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.analysis_cache import AnalysisCache
from app.analysis_pool import AnalysisPool
from app.charts import routes as charts
from app.config import Settings
from app.custom import routes as custom
from app.custom.store import CustomStore
from app.errors import install_error_handlers
from app.head_requests import HeadAsGet
from app.inside import routes as inside
from app.inside.worker import InsideWorker
from app.lab import routes as lab
from app.lab.data import lab_data
from app.predict import routes as predict
from app.predict.pipeline import preload_entries
from app.predict.worker import InferenceWorker
from app.schemas import ERROR_RESPONSES
from app.state_store import StateStore
from app.speed import routes as speed
from app.speed.jobs import create_speed_jobs
from app.templating import install_filters
from app.warmup import Warmup
from app.weights import routes as weights
from app.weights.jobs import WeightsFetches
from app.zoo import routes as zoo
from models.weights import set_trained_weights_dir

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = ROOT / "templates"


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def install_plotly_js() -> Path:
    """Copy plotly.min.js from the installed plotly package into static/, once:
    pages load it from our own origin, never from a CDN."""
    import plotly

    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    target = STATIC_DIR / "plotly.min.js"
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        STATIC_DIR.mkdir(exist_ok=True)
        shutil.copyfile(source, target)
    return target


class WorkerHeader:
    """Names the worker process that answered (``X-ConvZoo-Worker``: its pid):
    with ``--workers N`` which process served a request is otherwise invisible
    (operators reading logs, and the tests that check every worker agrees)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_named(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-convzoo-worker", str(os.getpid()).encode())]
            await send(message)

        await self.app(scope, receive, send_named)


def inference_for(settings: Settings, device: torch.device):
    """The embedded batching worker, or the web tier's side of the Ray Serve deployment."""
    if settings.predictor == "ray":
        from app.predict.ray_serve import RayInference

        return RayInference(device, address=settings.ray_address, max_batch_size=settings.max_batch_size,
                            max_batch_wait_ms=settings.max_batch_wait_ms, max_queue=settings.max_queue)
    return InferenceWorker(
        device, max_batch_size=settings.max_batch_size, max_batch_wait_ms=settings.max_batch_wait_ms,
        max_queue=settings.max_queue, loaded_models=settings.loaded_models, torch_threads=settings.torch_threads,
        runtime=settings.runtime, export_dir=settings.cache_dir / "onnx", tolerance=settings.onnx_tolerance,
        inference_threads=settings.inference_threads)


# CPython's default thresholds (700, 10, 10) ran a full collection every ~30 page views
# under bench/warmup.py's clients, each scanning every long-lived object (the ~500k of
# torch, timm and the catalog, the analyses kept in memory, a page's rows): 0.3-1.1 s
# each, freeing nothing, a third of the web process's CPU and the tail of every page's
# latency (bench/gc_pauses.py). Start-up objects are frozen out of the scans (they
# live as long as the process); young collections run every 5,000 net allocations
# instead of 700, and a full one after 100 middle ones instead of 10: reference cycles
# are still collected, a few thousand requests later.
GC_THRESHOLDS = (5_000, 10, 100)


def tune_garbage_collection() -> None:
    """Freeze what start-up allocated and set GC_THRESHOLDS (once the app is built).
    Only the process's first app freezes: a later one (tests build many) would
    make the earlier apps still alive, cycles and all, permanent."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logger = logging.getLogger("convzoo")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tune_garbage_collection()
        if settings.warm_cache:
            # The lab's first view (its MobileNet grid) is computed ahead of its first visitor too.
            app.state.warmup.start(then=lambda: lab_data(app.state.analysis_cache))
        app.state.inference.start(preload=preload_entries(settings))
        yield
        app.state.inference.stop()
        app.state.warmup.stop()
        app.state.speed_jobs.stop()
        app.state.analysis_pool.shutdown()
        app.state.weights_fetches.stop()

    # The stock /docs and /redoc load their scripts from a CDN: /docs is served
    # below from the swagger-ui-bundle package instead, and /redoc is off.
    app = FastAPI(title="ConvZoo", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Explore convolutional network architectures: shapes, parameters, "
                              "multiply-adds, memory and predictions.")
    app.state.settings = settings
    app.state.logger = logger
    app.state.device = resolve_device(settings.device)
    # What every worker process shares (`convzoo serve --workers N`) lives in the cache directory.
    app.state.state_store = StateStore(settings.cache_dir / "state.sqlite3")
    app.state.analysis_pool = AnalysisPool(settings.analysis_processes)
    app.state.analysis_cache = AnalysisCache(settings.cache_dir, pool=app.state.analysis_pool)
    app.state.warmup = Warmup(app.state.analysis_cache, app.state.state_store)
    app.state.speed_jobs = create_speed_jobs(settings.cache_dir, app.state.state_store, app.state.device,
                                             settings.speed_time_budget_s)
    app.state.inference = inference_for(settings, app.state.device)
    set_trained_weights_dir(settings.cache_dir / "weights")  # LeNet-5's, trained here
    app.state.custom_store = CustomStore(settings.cache_dir / "custom", settings.custom_store_bytes,
                                         on_evict=app.state.analysis_cache.forget)
    app.state.custom_store.install()
    app.state.weights_fetches = WeightsFetches()
    app.state.inside = InsideWorker(app.state.device, loaded_models=settings.inside_loaded_models,
                                    max_waiting=settings.inside_max_waiting, runtime=settings.runtime,
                                    export_dir=settings.cache_dir / "onnx", tolerance=settings.onnx_tolerance)
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    install_filters(templates.env)
    app.state.templates = templates

    install_plotly_js()
    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url, title="ConvZoo API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css", swagger_favicon_url="data:,",
            # Deep links put a link inside each operation's toggle button: nested controls a screen reader can't use.
            swagger_ui_parameters={"deepLinking": False},
        )
        # Swagger UI has no way back to the app, and a few of its greys fail WCAG contrast.
        html = page.body.decode().replace("</head>", '<link rel="stylesheet" href="/static/css/docs.css"></head>', 1)
        html = html.replace("<body>", '<body><nav class="docs-back" aria-label="ConvZoo"><a href="/">'
                                      '&larr; Back to ConvZoo</a></nav>', 1)
        return HTMLResponse(html.replace("<html>", '<html lang="en">', 1))

    install_error_handlers(app)
    app.add_middleware(WorkerHeader)
    app.add_middleware(HeadAsGet)
    app.include_router(zoo.router, responses=ERROR_RESPONSES)
    app.include_router(charts.router, responses=ERROR_RESPONSES)
    app.include_router(lab.router, responses=ERROR_RESPONSES)
    app.include_router(speed.router, responses=ERROR_RESPONSES)
    app.include_router(predict.router, responses=ERROR_RESPONSES)
    app.include_router(inside.router, responses=ERROR_RESPONSES)
    app.include_router(weights.router, responses=ERROR_RESPONSES)
    app.include_router(custom.router, responses=ERROR_RESPONSES)
    return app


app = create_app()
