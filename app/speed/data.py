"""The data behind the speed page and a model's speed section: measured
results next to accuracy and multiply-adds, the log-log fit of latency on
MACs, and the best model under a latency budget."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

from app.errors import NotMeasured
from app.analysis_cache import AnalysisCache
from app.speed.jobs import SpeedStore
from app.names import natural_key
from models.analysis import AnalysisError
from models.catalog import ModelEntry
from models.registry import list_models
from models.speed import SpeedResult
from models.speed_backends import DeviceInfo


Runtime = Literal["eager", "onnxruntime"]


class RuntimeSpeed(BaseModel):
    """One way of running a model (float32), at batch 1 and at its best batch."""

    variant: str  # "float32", "float32-channels_last", "float32-onnxruntime"
    label: str  # "eager", "eager, channels_last", "ONNX Runtime"
    latency_ms: float | None  # batch 1, median
    best_images_per_s: float
    best_batch_size: int
    vs_eager: float | None = None  # eager's batch-1 latency / this one's: above 1 is faster


class ModelSpeed(BaseModel):
    id: str
    device: DeviceInfo
    results: list[SpeedResult]  # newest first; each a resolution + dtype + memory format + runtime
    runtimes: list[RuntimeSpeed] = []  # the runtimes measured, side by side (eager first)


class SpeedRow(BaseModel):
    id: str
    name: str
    family: str
    top1: float | None
    measured: bool
    input_shape: list[int] | None = None  # [C, H, W] measured
    variant: str | None = None  # the measurement shown: dtype, memory format, runtime
    macs: int | None = None  # per image at that input
    latency_ms: float | None = None  # batch 1, median
    p90_ms: float | None = None  # batch 1
    best_images_per_s: float | None = None  # over the batch sizes measured
    best_batch_size: int | None = None
    peak_memory_bytes: int | None = None  # at batch 1
    measured_at: str | None = None
    vs_macs: float | None = None  # measured latency / latency the fit predicts from MACs
    runtimes: list[RuntimeSpeed] = []  # every float32 runtime measured, at one input size (runtime_speeds)
    fastest_ms: float | None = None  # batch-1 latency on its fastest runtime measured (this row's or runtimes')
    fastest_runtime: str | None = None  # that runtime's label


class LatencyFit(BaseModel):
    """log10(latency in ms at batch 1) = intercept + slope * log10(MACs): least squares."""

    slope: float
    intercept: float
    points: int


class FamilySpeed(BaseModel):
    family: str
    models: int
    vs_macs: float  # geometric mean of its models' measured / predicted latency


class BudgetAnswer(BaseModel):
    budget_ms: float  # per image at batch 1
    best: str | None  # the most accurate measured model within it, on any runtime measured
    fitting: int  # how many measured models (with a known top-1) fit, on at least one runtime
    runtime: str | None = None  # the best's fastest runtime label ("ONNX Runtime", ...)
    latency_ms: float | None = None  # the best's batch-1 latency on that runtime


class SpeedPage(BaseModel):
    device: DeviceInfo
    dtype: str
    channels_last: bool
    runtime: Runtime = "eager"  # which measurements the rows, fit and charts show
    rows: list[SpeedRow]  # the catalog, measured or not
    fit: LatencyFit | None
    families: list[FamilySpeed]  # slowest relative to their MACs first
    frontier: list[str]  # ids, fastest first: each more accurate than every faster model
    budget: BudgetAnswer | None


def model_speed_data(store: SpeedStore, entry: ModelEntry) -> ModelSpeed:
    results = store.results(entry.id)
    if not results:
        raise NotMeasured(f"{entry.id} has not been measured on this device ({store.device.name}); "
                          f"POST /api/models/{entry.id}/speed to measure it.")
    return ModelSpeed(id=entry.id, device=store.device, results=results, runtimes=runtime_speeds(entry, results))


_RUNTIME_LABELS = {"float32": "eager", "float32-channels_last": "eager, channels_last",
                   "float32-onnxruntime": "ONNX Runtime"}


def runtime_speeds(entry: ModelEntry, results: list[SpeedResult]) -> list[RuntimeSpeed]:
    """The float32 runtimes measured at one input size (the model's own if
    any was measured there, else the newest measurement's), eager first, each
    with its speed-up over eager at batch 1."""
    comparable = [r for r in results if r.variant in _RUNTIME_LABELS]  # newest first
    if not comparable:
        return []
    native = [r for r in comparable if r.input_shape == list(entry.input_size)]
    shape = (native or comparable)[0].input_shape
    newest: dict[str, SpeedResult] = {}
    for result in comparable:
        if result.input_shape == shape:
            newest.setdefault(result.variant, result)
    speeds = []
    for variant, label in _RUNTIME_LABELS.items():
        if (result := newest.get(variant)) is None:
            continue
        best = max(result.batches, key=lambda b: b.images_per_s)
        first = result.batches[0] if result.batches[0].batch_size == 1 else None
        speeds.append(RuntimeSpeed(variant=variant, label=label, latency_ms=first and first.median_ms,
                                   best_images_per_s=best.images_per_s, best_batch_size=best.batch_size))
    eager = next((s.latency_ms for s in speeds if s.variant == "float32"), None)
    for speed in speeds:
        if eager and speed.latency_ms:
            speed.vs_eager = eager / speed.latency_ms
    return speeds


def _chosen(entry: ModelEntry, results: list[SpeedResult], dtype: str, channels_last: bool,
            runtime: Runtime = "eager") -> SpeedResult | None:
    """The result the page shows: the dtype, format and runtime asked, the
    model's own input size if measured there, else the newest."""
    matching = [r for r in results if r.dtype == dtype and r.channels_last == channels_last
                and r.runtime == runtime]
    native = [r for r in matching if r.input_shape == list(entry.input_size)]
    return (native or matching or [None])[0]


def _row(cache: AnalysisCache, entry: ModelEntry, result: SpeedResult | None,
         runtimes: list[RuntimeSpeed]) -> SpeedRow:
    row = SpeedRow(id=entry.id, name=entry.name, family=entry.family.name, top1=entry.top1,
                   measured=result is not None, runtimes=runtimes)
    if result is None:
        return row
    resolution = None if result.input_shape == list(entry.input_size) else result.input_shape[1]
    try:
        macs = cache.get(entry, resolution).totals.macs
    except AnalysisError:  # measured, yet not analysable: shown without MACs, left out of the fit
        macs = None
    best = max(result.batches, key=lambda b: b.images_per_s)
    first = result.batches[0] if result.batches[0].batch_size == 1 else None
    return row.model_copy(update=dict(
        input_shape=result.input_shape, variant=result.variant, macs=macs,
        latency_ms=first and first.median_ms, p90_ms=first and first.p90_ms,
        best_images_per_s=best.images_per_s, best_batch_size=best.batch_size,
        peak_memory_bytes=first and first.peak_memory_bytes, measured_at=result.measured_at,
    ))


def fit_latency(rows: list[SpeedRow]) -> LatencyFit | None:
    points = [(math.log10(r.macs), math.log10(r.latency_ms)) for r in rows if r.macs and r.latency_ms]
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x, _ in points))
    return LatencyFit(slope=slope, intercept=mean_y - slope * mean_x, points=n)


def predicted_ms(fit: LatencyFit, macs: int) -> float:
    return 10 ** (fit.intercept + fit.slope * math.log10(macs))


def frontier(rows: list[SpeedRow]) -> list[str]:
    ranked = sorted((r for r in rows if r.latency_ms and r.top1 is not None), key=lambda r: (r.latency_ms, -r.top1))
    ids, best = [], -math.inf
    for row in ranked:
        if row.top1 > best:
            ids.append(row.id)
            best = row.top1
    return ids


def best_under(rows: list[SpeedRow], budget_ms: float) -> BudgetAnswer:
    """The most accurate model that some measured runtime runs within the
    budget (ties: the faster), with that runtime: a depthwise net too slow in
    eager PyTorch may fit on ONNX Runtime."""
    fitting = [r for r in rows if r.fastest_ms and r.top1 is not None and r.fastest_ms <= budget_ms]
    best = max(fitting, key=lambda r: (r.top1, -r.fastest_ms), default=None)
    if best is None:
        return BudgetAnswer(budget_ms=budget_ms, best=None, fitting=0)
    return BudgetAnswer(budget_ms=budget_ms, best=best.id, fitting=len(fitting), runtime=best.fastest_runtime,
                        latency_ms=best.fastest_ms)


def _fastest(row: SpeedRow) -> SpeedRow:
    options = [(s.latency_ms, s.label) for s in row.runtimes if s.latency_ms]
    if row.latency_ms:
        options.append((row.latency_ms, _RUNTIME_LABELS.get(row.variant, row.variant)))
    if options:
        row.fastest_ms, row.fastest_runtime = min(options)
    return row


def speed_data(store: SpeedStore, cache: AnalysisCache, budget_ms: float | None = None,
               dtype: Literal["float32", "float16", "bfloat16"] = "float32", channels_last: bool = False,
               runtime: Runtime = "eager") -> SpeedPage:
    """The catalog's measured speed on this device, in the dtype, memory
    format and runtime asked; each row also lists every float32 runtime measured."""
    measured = set(store.measured_ids())
    rows = []
    for entry in sorted(list_models(), key=lambda e: natural_key(e.name)):
        results = store.results(entry.id) if entry.id in measured else []
        shown = _chosen(entry, results, dtype, channels_last, runtime) if results else None
        rows.append(_fastest(_row(cache, entry, shown, runtime_speeds(entry, results))))
    fit = fit_latency(rows)
    families: dict[str, list[float]] = {}
    if fit is not None:
        for row in rows:
            if row.macs and row.latency_ms:
                row.vs_macs = row.latency_ms / predicted_ms(fit, row.macs)
                families.setdefault(row.family, []).append(math.log10(row.vs_macs))
    family_rows = sorted((FamilySpeed(family=name, models=len(logs), vs_macs=10 ** (sum(logs) / len(logs)))
                          for name, logs in families.items()), key=lambda f: -f.vs_macs)
    return SpeedPage(
        device=store.device, dtype=dtype, channels_last=channels_last, runtime=runtime, rows=rows, fit=fit, families=family_rows,
        frontier=frontier(rows), budget=None if budget_ms is None else best_under(rows, budget_ms),
    )
