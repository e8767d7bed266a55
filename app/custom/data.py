"""A user's own network into the zoo: an uploaded ONNX file or a typed
Sequential becomes an entry of the store (app/custom/store.py), analysed by
the same cache and engine as every zoo model."""

from __future__ import annotations

import time

from app.analysis_cache import AnalysisCache
from app.custom.schemas import CustomPage, OnnxCreated, Preset, SequentialRequest, SequentialResponse
from app.custom.store import CustomStore
from app.errors import ApiError, InvalidModelFile, InvalidParameter, InvalidSequential, TooLarge, UnsupportedModel
from app.zoo.data import card, layers_data
from models.analysis import MAX_RESOLUTION, AnalysisError
from models.custom import onnx_entry, onnx_id, sequential_entry, sequential_id
from models.onnx_graph import MAX_NODES, SUPPORTED_OPS, OnnxError, input_spec, parse, strip_weights
from models.sequential import LAYERS, PRESETS, SequentialError

def _api_error(exc: OnnxError) -> ApiError:
    if exc.kind == "invalid":
        return InvalidModelFile(str(exc))
    if exc.kind == "too_large":
        return TooLarge(str(exc))
    if exc.kind == "needs_resolution":
        return InvalidParameter(str(exc))
    return UnsupportedModel(str(exc))


def parse_resolution(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_RESOLUTION:
        raise InvalidParameter(f"resolution must be a whole number of pixels from 1 to {MAX_RESOLUTION}.")
    return int(text)


def add_onnx(store: CustomStore, cache: AnalysisCache, data: bytes, resolution: int | None = None,
             filename: str | None = None) -> OnnxCreated:
    """Check, analyse and keep an uploaded graph (blocking: call from a worker
    thread). The id is the file's (models/custom.onnx_id); a graph with free
    height and width gets one id per ``resolution`` (and is refused without
    one), so an upload never changes what another id shows: what a user
    shared stays as it was. The same file (at the same resolution) again is
    answered from the store. ``filename`` names the entry where the graph
    has the exporter's default name. Raises InvalidModelFile (400), TooLarge
    (413), UnsupportedModel or InvalidParameter (422)."""
    start = time.perf_counter()
    try:
        model = strip_weights(parse(data))
        resolution = resolution if input_spec(model, resolution).free else None  # a fixed graph ignores it
        model_id = onnx_id(data, resolution)
        entry = onnx_entry(model_id, model, resolution, filename)
    except OnnxError as exc:
        raise _api_error(exc) from None
    stored = store.entry(model_id)
    cached = stored is not None
    if cached:
        entry = stored
    else:
        try:  # a graph the engine cannot run is refused here, not kept
            cache.get(entry)
        except OnnxError as exc:
            raise _api_error(exc) from None
        except (AnalysisError, KeyError, TypeError, ArithmeticError) as exc:
            raise UnsupportedModel(f"The graph cannot be analysed: {exc}") from None
        store.put_onnx(entry, model, resolution, filename)
    summary = card(cache, entry)
    return OnnxCreated(**summary.model_dump(), url=f"/models/{model_id}", cached=cached,
                       analysis_ms=round((time.perf_counter() - start) * 1000, 1))


def add_sequential(store: CustomStore, cache: AnalysisCache, request: SequentialRequest) -> SequentialResponse:
    """Parse (never execute), analyse and keep a typed Sequential; raises
    InvalidSequential (400) with the line and column, or the layer and shapes
    where the input does not fit."""
    input_size = tuple(request.input)
    model_id = sequential_id(request.code, input_size)
    entry = store.entry(model_id)
    if entry is None:
        try:
            entry = sequential_entry(model_id, request.code, input_size)
            cache.get(entry)
        except (SequentialError, AnalysisError) as exc:
            raise InvalidSequential(str(exc)) from None
        store.put_sequential(entry, request.code)
    layers = layers_data(cache, entry)
    return SequentialResponse(**layers.model_dump(), name=entry.name, url=f"/models/{model_id}")


def custom_page_data(max_onnx_bytes: int) -> CustomPage:
    return CustomPage(
        presets=[Preset(key=key, name=name, input=shape, code=code) for key, (name, shape, code) in PRESETS.items()],
        layers=sorted(LAYERS), onnx_ops=SUPPORTED_OPS, max_onnx_bytes=max_onnx_bytes, max_onnx_nodes=MAX_NODES,
    )
