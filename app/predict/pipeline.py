"""Prediction: the request pipeline after the upload is read, the /predict
page's data, and the example photos (fixed names mapped to files shipped in
installed packages; nothing a client sends becomes a path)."""

from __future__ import annotations

import importlib.util
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from app.config import Settings
from app.errors import InvalidImage, InvalidParameter, NotFound, WeightsUnavailable
from app.predict.schemas import (Example, PredictionItem, PredictModel, PredictPage, PredictResponse,
                                 PreparingModel, PreprocessingInfo, Timing, WorkerStatus)
from app.images import decode_image, degenerate_notes
from app.predict.worker import InferenceWorker
from app.names import natural_key
from models.catalog import ModelEntry
from models.digits import PREPARATION as DIGIT_PREPARATION
from models.digits import DigitPreprocessing, NoDigitError
from models.onnx_runtime import has_verified_export
from models.predictor import wanted_runtime
from models.preprocess import preprocessing_for
from models.registry import get_entry, list_models
from models.weights import TRAINED_HERE, WeightsError, weights_status

DEFAULT_TOPK = 5
MAX_TOPK = 10

# name -> (package, file inside the package, title)
EXAMPLES: dict[str, tuple[str, str, str]] = {
    "chelsea": ("skimage", "data/chelsea.png", "Chelsea the cat"),
    "coffee": ("skimage", "data/coffee.png", "A cup of coffee"),
    "rocket": ("skimage", "data/rocket.jpg", "A rocket on its launch pad"),
    "motorcycle": ("skimage", "data/motorcycle_left.png", "A motorbike"),
    "astronaut": ("skimage", "data/astronaut.png", "Astronaut Eileen Collins"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "Grace Hopper"),
}


def example_path(name: str) -> Path | None:
    """The installed file behind an example name; None when its package is
    not installed (scikit-image and matplotlib are optional)."""
    package, relative, _ = EXAMPLES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / relative
    return path if path.is_file() else None


def example_file(name: str) -> Path:
    path = example_path(name) if name in EXAMPLES else None
    if path is None:
        raise NotFound(f"No example image named {name!r}; GET /api/predict/models lists them.")
    return path


def parse_topk(text: str | None) -> int:
    if text in (None, ""):
        return DEFAULT_TOPK
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOPK:
        raise InvalidParameter(f"topk must be a whole number from 1 to {MAX_TOPK}; got {text[:20]!r}.")
    return int(text)


async def predict(worker: InferenceWorker, settings: Settings, entry: ModelEntry, data: bytes, topk: int,
                  started: float) -> PredictResponse:
    status = weights_status(entry)
    if not status.available:
        raise WeightsUnavailable(f"{entry.name} ({entry.id}) cannot predict here: {status.reason}")
    preprocessing = preprocessing_for(entry)
    notes: list[str] = []

    def prepare():
        try:
            image = decode_image(data, settings.max_image_pixels, preprocessing.resize)
            notes.extend(degenerate_notes(image))
            return preprocessing(image)
        except NoDigitError as exc:
            raise InvalidImage(f"{exc} {entry.name} reads one handwritten digit, dark on light or light on "
                               f"dark.") from None

    try:
        prepare_ms = await worker.ensure_ready(entry)
        result, preprocess_ms = await worker.predict(entry, prepare, topk)
    except WeightsError as exc:  # the file went away or would not load
        raise WeightsUnavailable(f"{entry.name} ({entry.id}) cannot predict here: {exc}") from None
    return PredictResponse(
        model=entry.id, device=str(worker.device),
        predictions=[PredictionItem(rank=rank, index=index, label=label, probability=probability)
                     for rank, (index, label, probability)
                     in enumerate(zip(result.indices, result.labels, result.probabilities), start=1)],
        timing_ms=Timing(preprocess=preprocess_ms, inference=result.inference_ms,
                         total=(time.perf_counter() - started) * 1000),
        batch_size=result.batch_size, input_size=list(preprocessing.input_shape), runtime=result.runtime,
        prepare_ms=prepare_ms, notes=notes,
    )


def preload_entries(settings: Settings) -> list[ModelEntry]:
    """The default model, for the worker to load at start-up so the first
    prediction does not pay for it (when its weights are here); with the
    warm-up on, LeNet-5 too, which trains it (seconds, once per cache) so its
    card shows its held-out accuracy."""
    entries = [get_entry(settings.default_model)]
    if settings.warm_cache and TRAINED_HERE != settings.default_model:
        entries.append(get_entry(TRAINED_HERE))
    return [entry for entry in entries if weights_status(entry).available]


def _preprocessing_info(entry: ModelEntry) -> PreprocessingInfo | None:
    try:
        preprocessing = preprocessing_for(entry)
    except ValueError:  # no published weights
        return None
    if isinstance(preprocessing, DigitPreprocessing):
        return PreprocessingInfo(kind="digit", input_size=list(preprocessing.input_shape),
                                 crop=preprocessing.input_side, description=DIGIT_PREPARATION)
    return PreprocessingInfo(kind="image", input_size=list(preprocessing.input_shape), **asdict(preprocessing))


def _export_cached(entry: ModelEntry, worker: InferenceWorker) -> bool:
    """A verified export of this model is on disk (models/onnx_runtime.py's
    records; one made with other weights or libraries would count too, so
    this is a hint for the page, never a promise)."""
    export_dir = getattr(worker.models, "export_dir", None)
    return export_dir is not None and has_verified_export(export_dir, entry.id)


def _predict_model(entry: ModelEntry, worker: InferenceWorker) -> PredictModel:
    status = weights_status(entry)
    loaded = worker.runtimes.get(entry.id)
    preparing = worker.preparing.get(entry.id)
    export_cached = None
    if not status.available:
        state, runtime, reason = "unavailable", None, "Cannot predict here (no weights)."
    elif preparing is not None:
        state, runtime, reason = "preparing", None, f"Being loaded now: {preparing.stage}."
    elif loaded is not None and worker.models.has(entry.id):
        state, runtime, reason = "ready", loaded.runtime, loaded.reason
    else:
        state = "not_loaded"
        wanted = wanted_runtime(worker.runtime_setting, worker.device)
        runtime, reason = (loaded.runtime, loaded.reason) if loaded else (None, f"Not loaded yet; when it is: {wanted.reason}")
        if loaded is None and wanted.runtime == "onnxruntime":
            export_cached = _export_cached(entry, worker)
            reason += (" (if the export passes; else eager PyTorch, with the reason here). "
                       + ("A verified export is on disk: its first prediction loads it in seconds."
                          if export_cached else "Its first prediction exports it and checks the export against "
                          "PyTorch: about a minute on a small CPU (later loads reuse the export)."))
    return PredictModel(
        id=entry.id, name=entry.name, family=entry.family.name, year=entry.model_year, top1=entry.top1,
        weights=status.status, available=status.available, reason=status.reason,
        preprocessing=_preprocessing_info(entry), runtime=runtime, runtime_reason=reason, state=state,
        preparing_stage=preparing.stage if preparing else None,
        preparing_s=round(preparing.seconds(), 1) if preparing else None, export_cached=export_cached,
    )


def predict_page_data(settings: Settings, worker: InferenceWorker, available: bool | None = None) -> PredictPage:
    """Which models can predict here (available first) and why the others
    can't, which runtime each uses and why, the example photos, and the
    limits a client must respect. ``available``: only the models that can
    (True) or cannot (False) predict here; None: the whole catalog.
    ``counts`` always covers the whole catalog."""
    device = str(worker.device)
    statuses = [(entry, weights_status(entry)) for entry in list_models()]
    counts = dict(Counter(status.status for _, status in statuses))
    chosen = [entry for entry, status in statuses if available is None or status.available == available]
    models = sorted((_predict_model(entry, worker) for entry in chosen),
                    key=lambda m: (not m.available, natural_key(m.name)))
    examples = [Example(name=name, title=title, source=f"{package}: {relative}",
                        url=f"/api/predict/examples/{name}")
                for name, (package, relative, title) in EXAMPLES.items() if example_path(name) is not None]
    return PredictPage(default_model=settings.default_model, device=device, runtime_setting=settings.runtime,
                       max_upload_bytes=settings.max_upload_bytes, max_image_pixels=settings.max_image_pixels,
                       default_topk=DEFAULT_TOPK, max_topk=MAX_TOPK, models=models, examples=examples,
                       counts={status: counts.get(status, 0) for status in ("available", "downloadable", "none")})


def worker_status(worker: InferenceWorker) -> WorkerStatus:
    sizes = dict(sorted(worker.batch_sizes.items()))
    return WorkerStatus(
        running=worker.running, device=str(worker.device), queued=worker.queued,
        preprocessing=worker.preprocessing, max_queue=worker.max_queue,
        max_batch_size=worker.max_batch_size, max_batch_wait_ms=worker.max_batch_wait_s * 1000,
        batches=sum(sizes.values()), images=sum(size * count for size, count in sizes.items()),
        batch_sizes=sizes, loaded_models=worker.models.ids, predictor=worker.mode,
        inference_threads=worker.inference_threads, peak_concurrent_forwards=worker.models.peak_concurrent_forwards,
        replicas=dict(worker.replicas) if worker.mode == "ray" else {},
        preparing=[PreparingModel(model=model, stage=p.stage, seconds=round(p.seconds(), 1))
                   for model, p in worker.preparing.items()],
        waiting_for_load=worker.waiting_for_load,
    )
