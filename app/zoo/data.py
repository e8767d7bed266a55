"""Catalog cards, per-layer tables and comparisons: the data behind the zoo
pages and their /api twins."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict
from pathlib import Path

from app.analysis_cache import AnalysisCache, registered
from app.analysis_pool import AnalysisPool
from app.state_store import write_atomically
from app.errors import InvalidParameter
from app.schemas import ModelCard, TrainedHere
from app.zoo.schemas import (CatalogResponse, CompareItem, CompareResponse, InputRule, Layer, LayersResponse,
                             ModelDetail, Totals, TrainingMemory)
from app.zoo.formulas import layer_formulas
from app.zoo.layer_stats import profile, stages
from models.analysis import MAX_RESOLUTION, Analysis, AnalysisError, analyse, input_shape_for
from models.build import build_on_meta
from models.catalog import ModelEntry
from models.digits import DATASET as DIGITS_DATASET
from models.registry import MODEL_ID_PATTERN, UnknownModelError, get_entry, list_models
from models.resolution import ResolutionRule, resolution_rule
from models.timm_zoo import is_reparameterisable
from models.weights import TRAINED_HERE, lenet5_training, weights_status

MAX_COMPARE = 6


def analysis_for(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None) -> Analysis:
    try:
        return cache.get(entry, resolution)
    except AnalysisError as exc:
        if resolution is not None and 1 <= resolution <= MAX_RESOLUTION:
            raise InvalidParameter(resolution_refusal(cache, entry, resolution, exc.where)) from None
        raise InvalidParameter(str(exc)) from None


def card(cache: AnalysisCache, entry: ModelEntry, wait: bool = True) -> ModelCard:
    """The model's card; ``wait=False`` (catalog lists) never analyses: a model
    not analysed yet comes back with ``analysed`` false and no counts."""
    totals = cache.get(entry).totals if wait else cache.peek_totals(entry)
    status = weights_status(entry)
    facts = entry.timm
    return ModelCard(
        id=entry.id, name=entry.name, family=entry.family.name, year=entry.model_year, source=entry.source,
        input_size=list(entry.input_size), params=totals.params if totals else None,
        macs=totals.macs if totals else None, analysed=totals is not None,
        top1=entry.top1, top5=entry.top5, accuracy_source=entry.accuracy_source, weights=status.status,
        paper=entry.family.paper, introduced=entry.family.introduced, citation=entry.citation,
        weights_reason=status.reason, pretrain=facts.pretrain if facts else _pretrain(entry),
        top1_resolution=facts.top1_resolution if facts else None, trained_here=_trained_here(entry),
    )


def _pretrain(entry: ModelEntry) -> str | None:
    """What the accuracy's weights were pre-trained on, outside timm: torchvision's
    SWAG weights on Instagram's 3.6B images (ig3b), the rest on ImageNet-1k."""
    if entry.top1 is None:
        return None
    return "ig3b" if "SWAG" in str(entry.tv_weights) else "in1k"


def _trained_here(entry: ModelEntry) -> TrainedHere | None:
    trained = lenet5_training() if entry.id == TRAINED_HERE else None
    if trained is None:
        return None
    return TrainedHere(dataset=DIGITS_DATASET, train_images=trained.train_images,
                       held_out_images=trained.held_out_images,
                       held_out_accuracy=round(trained.held_out_accuracy, 2))


def catalog_data(cache: AnalysisCache) -> CatalogResponse:
    """Every card, without waiting for any analysis: the facts of each card are
    kept (30 s, for weights fetched meanwhile), the counts read from the
    cache's totals on each call, so a running warm-up costs no rebuild."""
    key = (len(list_models()), int(time.monotonic() // 30))
    cached = getattr(cache, "catalog_facts", None)
    if cached is None or cached[0] != key:
        cached = (key, [(entry, card(cache, entry, wait=False)) for entry in list_models()])
        cache.catalog_facts = cached
    models = []
    for entry, known in cached[1]:
        if not known.analysed and (totals := cache.peek_totals(entry)) is not None:
            known = known.model_copy(update={"params": totals.params, "macs": totals.macs, "analysed": True})
        models.append(known)
    return CatalogResponse(models=models, total=len(models))


def _totals(analysis: Analysis) -> Totals:
    return Totals(**asdict(analysis.totals))


def _layers(analysis: Analysis) -> list[Layer]:
    layers = [Layer(**vars(row)) for row in analysis.layers]
    for layer in layers:
        layer.formulas = layer_formulas(layer)
    return layers


def model_data(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None,
               layers: list[Layer] | None = None, wait_s: float | None = None) -> ModelDetail:
    """``layers``: the rows of ``layers_data`` for the same resolution, where
    the caller has them (the model page), so they are not built twice;
    ``wait_s``: how long to wait for the input rule and the inference form
    (None: until they are there; the page waits PAGE_WAIT_S and shows them as
    being worked out)."""
    analysis = analysis_for(cache, entry, resolution)
    totals = _totals(analysis)
    layers = layers if layers is not None else _layers(analysis)
    activations = 2 * totals.activation_bytes
    remaining = (lambda: None) if wait_s is None else _waiting(cache, entry, resolution, wait_s)
    return ModelDetail(
        **card(cache, entry).model_dump(), totals=totals, flops=2 * totals.macs,
        training_activation_bytes_estimate=activations,
        input_shape=analysis.input_shape, stages=stages(layers, analysis.input_shape, totals),
        inference_form=inference_form_totals(cache, entry, resolution, remaining()),
        pretrained_tags=list(entry.timm.tags) if entry.timm else [],
        training_memory=training_memory(totals.param_bytes, activations),
        input_rule=input_rule(cache, entry, remaining()),
    )


# A model's input rule (a dozen traces, up to seconds for the largest nets) and its
# re-parameterised form (a second build and trace) are computed in the analysis
# pool, never in a web worker's thread where they would hold the GIL against every
# other request; pages wait for them at most PAGE_WAIT_S, and only where the line was
# empty (the pool goes on; a later view has them): behind other pages' jobs, under
# load, the wait would only hold the reader. The JSON answers wait until they are there. They go to the pool one at
# a time, so a burst of page views never fills its processes ahead of the cold
# analyses that requests are waiting for (ProcessPoolExecutor serves in order).
PAGE_WAIT_S = 0.25
_IN_FLIGHT: dict[tuple, Future] = {}  # asked for, in the pool or waiting for it
_WAITING: deque[tuple[AnalysisPool, Callable, tuple, Future]] = deque()
_IN_POOL = [0]  # of these jobs, how many the pool holds now (0 or 1)
_IN_FLIGHT_LOCK = threading.Lock()
# Kept per (model, resolution, versions): bounded, since the resolution is the reader's choice (the disk has them all).
_INFERENCE_FORMS: OrderedDict[tuple[str, int | None, str], Totals | None] = OrderedDict()
_INFERENCE_FORMS_KEPT = 512


def _in_pool(cache: AnalysisCache, key: tuple, function: Callable, *args, urgent: bool = False) -> Future:
    """One pool call per key however many requests ask at once; one such call in the pool at a
    time, except ``urgent`` ones (a request will wait for the answer, as for a cold analysis):
    those go to the pool at once, taking their job out of the line if it waits there."""
    with _IN_FLIGHT_LOCK:
        future = _IN_FLIGHT.get(key)
        if future is not None:
            queued = next((job for job in _WAITING if job[3] is future), None)
            if not (urgent and queued):
                return future
            _WAITING.remove(queued)
        else:
            future = _IN_FLIGHT[key] = Future()
            future.add_done_callback(lambda done: _forget_in_flight(key, done))
            if not urgent:
                _WAITING.append((cache.pool, function, args, future))
    if urgent:
        try:
            _chain(cache.pool.call(function, *args), future)
        except RuntimeError as exc:  # the pool is shutting down with the app: the key must not stay in flight
            future.set_exception(exc)
            return future
    _hand_next()
    return future


def _chain(pooled: Future, future: Future, then: Callable[[], None] | None = None) -> None:
    """``future`` takes ``pooled``'s outcome; ``then`` runs after."""
    def done(finished: Future) -> None:
        if then is not None:
            then()
        if finished.cancelled():  # the pool shut down (cancel_futures): waiters get an error, not a hang
            future.set_exception(RuntimeError("the analysis pool shut down before this job ran"))
            return
        error = finished.exception()
        future.set_exception(error) if error is not None else future.set_result(finished.result())

    pooled.add_done_callback(done)


def _hand_next() -> None:
    """Hand the pool the next waiting job if it holds none of these now."""
    with _IN_FLIGHT_LOCK:
        if _IN_POOL[0] or not _WAITING:
            return
        pool, function, args, future = _WAITING.popleft()
        _IN_POOL[0] = 1
    try:
        pooled = pool.call(function, *args)
    except RuntimeError as exc:  # the pool is shutting down with the app
        _lane_free()
        future.set_exception(exc)
        return
    _chain(pooled, future, then=_lane_free)


def _lane_free() -> None:
    with _IN_FLIGHT_LOCK:
        _IN_POOL[0] = 0
    threading.Thread(target=_hand_next, daemon=True).start()  # not in the pool's result thread


def _forget_in_flight(key: tuple, done: Future) -> None:
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.pop(key, None)
    if not done.cancelled() and isinstance(done.exception(), UnknownModelError):
        _HERE_ONLY.add(key[1])  # (kind, model id, ...): from now on worked out in this process


# Entries a pool process could not look up by id (registered in this process's catalog at run time).
_HERE_ONLY: set[str] = set()


def _result(future: Future, wait_s: float | None):
    """The future's result, or ``_PENDING`` after ``wait_s`` seconds (None: wait)."""
    try:
        return future.result(timeout=wait_s)
    except FutureTimeout:
        return _PENDING


_PENDING = object()


def _off_thread(cache: AnalysisCache, entry: ModelEntry) -> bool:
    """Whether ``entry``'s work can go to the pool: a pool process rebuilds catalog entries by id;
    a user's network (app/custom) lives in this process only, and is small."""
    return cache.pool is not None and registered(entry) and entry.id not in _HERE_ONLY


def _waiting(cache: AnalysisCache, entry: ModelEntry, resolution: int | None, wait_s: float):
    """Start the input rule and the inference form both, then wait ``wait_s`` for the two together
    (none where other pages' jobs were already in the pool or waiting for it): the returned
    function gives the seconds left."""
    with _IN_FLIGHT_LOCK:
        if _IN_POOL[0] or _WAITING:
            wait_s = 0.0
    model_rule(cache, entry, wait_s=0)
    inference_form_totals(cache, entry, resolution, wait_s=0)
    deadline = time.monotonic() + wait_s
    return lambda: max(0.0, deadline - time.monotonic())


def inference_form_totals(cache: AnalysisCache, entry: ModelEntry, resolution: int | None,
                          wait_s: float | None = None) -> Totals | None:
    """Totals of a timm net re-parameterised for inference (timm's own
    reparameterize_model), where that changes the net; None otherwise, or
    while it is still being worked out after ``wait_s`` seconds. Pure given the
    library versions, so kept per process and on disk beside the analyses (a
    pool's answer is kept as it comes, whether or not a request still waits)."""
    if entry.source != "timm":
        return None
    key = (entry.id, resolution, cache.versions)
    if key not in _INFERENCE_FORMS:
        _, _, height, width = input_shape_for(entry, resolution)
        path = cache.directory / f"{entry.id}-{height}x{width}-inference-form-{cache.versions}.json"
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            if not _off_thread(cache, entry):
                found = inference_form_to_file(entry.id, resolution, str(path))
            else:
                future = _in_pool(cache, ("form", *key), inference_form_to_file, entry.id, resolution, str(path),
                                  urgent=wait_s is None)
                future.add_done_callback(lambda done: _keep_inference_form(key, done))
                try:
                    found = _result(future, wait_s)
                except UnknownModelError:  # registered at run time in this process only
                    found = inference_form_to_file(entry.id, resolution, str(path))
                if found is _PENDING:
                    return None
        _keep_inference_form(key, found)
    return _INFERENCE_FORMS.get(key)


def _keep_inference_form(key: tuple[str, int | None, str], found: Future | dict | None) -> None:
    if isinstance(found, Future):
        if found.cancelled() or found.exception() is not None:
            return
        found = found.result()
    _INFERENCE_FORMS[key] = None if found is None else Totals(**found)
    while len(_INFERENCE_FORMS) > _INFERENCE_FORMS_KEPT:
        _INFERENCE_FORMS.popitem(last=False)


def inference_form_to_file(model_id: str, resolution: int | None, path: str) -> dict | None:
    """In a pool process (or this thread): the re-parameterised form's totals as a dict, or None
    (see inference_form_totals), written atomically to ``path`` as JSON."""
    entry = get_entry(model_id)
    model = build_on_meta(entry, resolution)
    found = None
    if is_reparameterisable(model):
        fused = build_on_meta(entry, resolution, reparameterised=True)
        found = asdict(analyse(fused, input_shape_for(entry, resolution)).totals)
    write_atomically(Path(path), json.dumps(found))
    return found


def model_rule(cache: AnalysisCache, entry: ModelEntry, wait_s: float | None = None) -> ResolutionRule | None:
    """The resolutions ``entry`` takes (models.resolution), kept beside its analyses: finding them
    costs a dozen traces, once per model and library versions, not once per process; None while
    it is still being worked out after ``wait_s`` seconds (None: wait)."""
    path = cache.directory / f"{entry.id}-input-rule-{cache.versions}.json"
    try:
        return ResolutionRule(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    if not _off_thread(cache, entry):
        return resolution_rule_to_file(entry.id, str(path), entry)
    try:
        found = _result(_in_pool(cache, ("rule", entry.id, cache.versions), resolution_rule_to_file, entry.id,
                                 str(path), urgent=wait_s is None), wait_s)
    except UnknownModelError:  # registered at run time in this process only
        return resolution_rule_to_file(entry.id, str(path), entry)
    return None if found is _PENDING else found


def resolution_rule_to_file(model_id: str, path: str, entry: ModelEntry | None = None) -> ResolutionRule:
    """In a pool process (or this thread, for ``entry`` given): find the rule, write it atomically."""
    rule = resolution_rule(entry or get_entry(model_id))
    write_atomically(Path(path), json.dumps(asdict(rule)))
    return rule


def input_rule(cache: AnalysisCache, entry: ModelEntry, wait_s: float | None = None) -> InputRule | None:
    rule = model_rule(cache, entry, wait_s)
    if rule is None:
        return None
    return InputRule(smallest=rule.smallest, only=rule.only, multiple_of=rule.multiple_of, reason=rule.reason)


# Per-parameter buffers each optimizer keeps (torch.optim docs): SGD none, momentum one, Adam/AdamW two moments.
OPTIMIZER_STATE = (("SGD", 0), ("SGD with momentum", 1), ("Adam / AdamW", 2))


def training_memory(param_bytes: int, activation_bytes: int) -> list[TrainingMemory]:
    """Weights + gradients + optimizer state + activations kept for backward, per optimizer."""
    rows = []
    for name, buffers in OPTIMIZER_STATE:
        state = buffers * param_bytes
        rows.append(TrainingMemory(optimizer=name, state_per_weight=buffers, weights=param_bytes,
                                   gradients=param_bytes, optimizer_state=state, activations=activation_bytes,
                                   total=2 * param_bytes + state + activation_bytes))
    return rows


def resolution_refusal(cache: AnalysisCache, entry: ModelEntry, resolution: int, where: str | None = None) -> str:
    """Why ``entry`` refuses ``resolution`` and what it takes instead, in the course's words; ``where``:
    the layer where the trace stopped, the shape it got and what it needs (AnalysisError.where)."""
    rule = model_rule(cache, entry)
    prefix = f"{entry.name} cannot take input {resolution}×{resolution}:"
    if rule.accepts(resolution) and where:  # a size the measured rule did not foresee failing (MaxViT at 256)
        return f"{prefix} {where}"
    s = rule.smallest
    if rule.only:
        instead = f"Use {s}."
    elif rule.multiple_of:
        instead = f"Try {max(s, -(-resolution // rule.multiple_of) * rule.multiple_of)}."
    else:
        instead = f"The smallest it takes is {s}×{s}."
    return f"{prefix} {rule.reason} {instead}" + (f" Where it fails: {where}" if where else "")


def layers_data(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None) -> LayersResponse:
    analysis = analysis_for(cache, entry, resolution)
    return LayersResponse(
        id=entry.id, input_shape=analysis.input_shape, totals=_totals(analysis), layers=_layers(analysis),
    )


# 1 to MAX_COMPARE ids, comma-separated: declared in the OpenAPI schema too.
MODEL_LIST_PATTERN = rf"^\s*{MODEL_ID_PATTERN}\s*(,\s*{MODEL_ID_PATTERN}\s*){{0,{MAX_COMPARE - 1}}}$"


def parse_model_list(text: str) -> list[str]:
    """The ids in order, a repeated id merged into its first place (vgg16,vgg16 compares one model)."""
    return list(dict.fromkeys(part.strip() for part in text.split(",")))


def compare_item(cache: AnalysisCache, entry: ModelEntry) -> CompareItem:
    analysis = cache.get(entry)
    totals = _totals(analysis)
    return CompareItem(**card(cache, entry).model_dump(), totals=totals, input_shape=analysis.input_shape,
                       stages=stages(analysis.layers, analysis.input_shape, totals),
                       profile=profile(analysis.layers, totals))


def compare_data(cache: AnalysisCache, entries: list[ModelEntry]) -> CompareResponse:
    return CompareResponse(models=[compare_item(cache, entry) for entry in entries])


LAYER_CSV_COLUMNS = ("path", "type", "depth", "is_leaf", "executed", "output_shape", "params", "macs",
                     "activation_elements")


def layers_csv(data: LayersResponse) -> str:
    """The per-layer table as CSV; shapes written as 1x64x224x224."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LAYER_CSV_COLUMNS)
    for layer in data.layers:
        row = layer.model_dump()
        row["output_shape"] = "x".join(map(str, layer.output_shape or []))
        writer.writerow(row[column] for column in LAYER_CSV_COLUMNS)
    return out.getvalue()


def layers_table(data: LayersResponse) -> str:
    """A torchinfo-like text table, to paste into notes."""
    header = ("Layer (type)", "Output shape", "Params", "MACs", "Activations")
    rows = []
    for layer in data.layers:
        name = "  " * (layer.depth - 1) + f"{layer.path.rsplit('.', 1)[-1]} ({layer.type})"
        if not layer.executed:
            name += " [not run in eval]"
        shape = "x".join(map(str, layer.output_shape)) if layer.output_shape else "--"
        rows.append((name, shape, f"{layer.params:,}", f"{layer.macs:,}", f"{layer.activation_elements:,}"))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    t = data.totals
    footer = [
        f"Input shape: {'x'.join(map(str, data.input_shape))}",
        f"Total params: {t.params:,} ({t.param_bytes / 1e6:.2f} MB)",
        f"Trainable params: {t.trainable_params:,}",
        f"Multiply-adds (MACs): {t.macs:,} ({t.macs / 1e9:.3f} G; FLOPs = 2 x MACs)",
        f"Forward activations: {t.activation_elements:,} elements ({t.activation_bytes / 1e6:.2f} MB)",
    ]
    return "\n".join([rule, line(header), rule, *map(line, rows), rule, *footer, rule])
