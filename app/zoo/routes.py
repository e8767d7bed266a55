"""Health, catalog, model card, per-layer analysis and compare: the JSON API
and, beside each, its page (/, /models/{id}, /compare)."""

from __future__ import annotations

import re
from dataclasses import asdict
import threading
from typing import Annotated

import timm
import torch
import torchvision
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.deps import get_cache, get_warmup, lookup_entry
from app.errors import InvalidParameter
from app.schemas import Health, WarmupStatus
from app.zoo.graph import graph_data, graph_outline, graph_svg
from app.zoo.schemas import CatalogResponse, CompareResponse, GraphResponse, LayersResponse, ModelDetail
from app.zoo import pages as zoo_pages
from app.zoo.catalog import CatalogQuery, catalog_query, select
from models.catalog import ModelEntry
from app.analysis_cache import AnalysisCache
from app.warmup import Warmup
from app.zoo.data import (MAX_COMPARE, MODEL_LIST_PATTERN, PAGE_WAIT_S, catalog_data, compare_data, layers_csv, layers_data,
                              model_data, parse_model_list)
from models.analysis import MAX_RESOLUTION

router = APIRouter()

Cache = Annotated[AnalysisCache, Depends(get_cache)]
WarmupState = Annotated[Warmup, Depends(get_warmup)]
Resolution = Annotated[int | None, Query(ge=1, le=MAX_RESOLUTION,
                                         description="Side of a square input, in pixels")]


@router.get("/api/health", response_model=Health)
def health(request: Request, warmup: WarmupState) -> Health:
    return Health(
        status="ok", device=str(request.app.state.device),
        versions={"torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__},
        warmup=WarmupStatus(**asdict(warmup.progress)),
    )


Query_ = Annotated[CatalogQuery, Depends(catalog_query)]


@router.get("/api/models", response_model=CatalogResponse)
def api_models(request: Request, cache: Cache, query: Query_) -> Response:
    """Every card by default (as API.md has it); filters, sort and paging are opt-in.
    The unfiltered answer is served from bytes kept until another model is analysed."""
    if query.page > 1 and query.per_page is None:  # every match is on page 1: a later page would answer it silently
        raise InvalidParameter(f"page={query.page} needs per_page (without it every match is on one page).")
    if not query.is_default():
        return Response(select(catalog_data(cache).models, query).model_dump_json(), media_type="application/json")
    written = cache.directory.stat().st_mtime_ns  # changes as any process (pool, other worker) adds an analysis
    stamp, body = getattr(request.app.state, "catalog_bytes", (None, b""))
    if stamp != (cache.generation, written):
        body = catalog_data(cache).model_dump_json().encode()
        # generation read after: a model analysed meanwhile refreshes the next answer
        request.app.state.catalog_bytes = ((cache.generation, written), body)
    return Response(body, media_type="application/json")


def _canonical(request: Request, model_id: str) -> tuple[ModelEntry, RedirectResponse | None]:
    """The entry, and a redirect where ``model_id`` is another name of it
    (timm-inception_v4 -> inception_v4), keeping the rest of the address."""
    entry = lookup_entry(model_id)
    if entry.id == model_id:
        return entry, None
    path = request.url.path.replace(f"/{model_id}", f"/{entry.id}", 1)
    query = f"?{request.url.query}" if request.url.query else ""
    return entry, RedirectResponse(path + query, status_code=307)


@router.get("/api/models/{model_id}", response_model=ModelDetail)
def api_model(request: Request, model_id: str, cache: Cache, resolution: Resolution = None) -> ModelDetail:
    entry, redirect = _canonical(request, model_id)
    return redirect or model_data(cache, entry, resolution)


@router.get("/api/models/{model_id}/layers", response_model=LayersResponse)
def api_layers(request: Request, model_id: str, cache: Cache, resolution: Resolution = None) -> Response:
    """Served from the JSON bytes of an earlier answer where there is one: the
    rows (and their formulas) are pure given the analysis, and re-serialising
    a 500-row table costs more than the cached analysis itself."""
    entry, redirect = _canonical(request, model_id)
    if redirect:
        return redirect
    key = (entry.id, resolution, cache.versions)
    body = _LAYERS_BYTES.get(key)
    if body is None:
        body = layers_data(cache, entry, resolution).model_dump_json().encode()
        with _LAYERS_BYTES_LOCK:
            _LAYERS_BYTES[key] = body
            while len(_LAYERS_BYTES) > _LAYERS_BYTES_ITEMS:
                _LAYERS_BYTES.pop(next(iter(_LAYERS_BYTES)))
    return Response(body, media_type="application/json")


# The newest per-layer answers as JSON bytes, oldest dropped first.
_LAYERS_BYTES: dict[tuple, bytes] = {}
_LAYERS_BYTES_ITEMS = 64
_LAYERS_BYTES_LOCK = threading.Lock()


ModelList = Annotated[str, Query(pattern=MODEL_LIST_PATTERN,
                                 description="1 to 6 model ids, comma-separated, e.g. vgg16,googlenet")]


@router.get("/api/compare", response_model=CompareResponse)
def api_compare(cache: Cache, models: ModelList) -> CompareResponse:
    return compare_data(cache, [lookup_entry(model_id) for model_id in parse_model_list(models)])


@router.get("/api/models/{model_id}/layers.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "The per-layer table as CSV."}})
def api_layers_csv(request: Request, model_id: str, cache: Cache, resolution: Resolution = None) -> Response:
    entry, redirect = _canonical(request, model_id)
    if redirect:
        return redirect
    data = layers_data(cache, entry, resolution)
    name = f"{data.id}-{data.input_shape[2]}x{data.input_shape[3]}-layers.csv"
    return Response(layers_csv(data), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


BlockIds = Annotated[str | None, Query(max_length=20_000, description=(
    "Block ids (the graph's nodes of kind 'block'), comma-separated"))]
Depth = Annotated[int | None, Query(ge=1, le=64, description=(
    "Folding depth: blocks nested this deep or deeper are one node each (omitted: nothing folded)"))]


def _graph(model_id: str, cache: AnalysisCache, resolution: int | None, depth: int | None, opened: str | None,
           closed: str | None) -> GraphResponse:
    def ids(text: str | None) -> frozenset[str]:
        return frozenset(part.strip() for part in (text or "").split(",") if part.strip())

    return graph_data(cache, lookup_entry(model_id), resolution, depth, ids(opened), ids(closed))


@router.get("/api/models/{model_id}/graph", response_model=GraphResponse)
def api_graph(model_id: str, cache: Cache, resolution: Resolution = None, depth: Depth = None,
              opened: Annotated[BlockIds, Query(alias="open")] = None,
              closed: Annotated[BlockIds, Query(alias="close")] = None) -> GraphResponse:
    """The data flow between layers and functional ops (add, cat, mul, matmul ...), folded at ``depth``;
    ``open``/``close`` open or close single blocks beyond that."""
    return _graph(model_id, cache, resolution, depth, opened, closed)


@router.get("/api/models/{model_id}/graph.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}, "description": "The graph laid out by Graphviz."}})
def api_graph_svg(model_id: str, cache: Cache, resolution: Resolution = None, depth: Depth = None,
                  opened: Annotated[BlockIds, Query(alias="open")] = None,
                  closed: Annotated[BlockIds, Query(alias="close")] = None) -> Response:
    """The same graph laid out top to bottom by Graphviz: node i of the JSON is ``<g id="gn_i">``."""
    graph = _graph(model_id, cache, resolution, depth, opened, closed)
    return Response(graph_svg(graph), media_type="image/svg+xml")


def _render(request: Request, template: str, context: dict) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, template, context)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def catalog_page(request: Request, cache: Cache, warmup: WarmupState, query: Query_,
                 selected: Annotated[str | None, Query(max_length=2000)] = None) -> HTMLResponse:
    """Never waits for the warm-up: models not analysed yet are listed as such."""
    if query.per_page is None:
        query.per_page = zoo_pages.CATALOG_PAGE_SIZE
    cards = catalog_data(cache).models
    page = select(cards, query)
    return _render(request, "catalog.html", {"catalog": page, "warmup": warmup.progress, "timm_version": timm.__version__,
                                             **zoo_pages.catalog_extras(cards, query, page, selected)})


@router.get("/models/{model_id}", response_class=HTMLResponse, include_in_schema=False)
def model_page(request: Request, model_id: str, cache: Cache, resolution: Resolution = None) -> HTMLResponse:
    """A resolution the model can't take keeps the reader on this page (422): the model at its own
    size, the form holding what they typed, and why, beside it."""
    entry, redirect = _canonical(request, model_id)
    if redirect:
        return redirect
    refused = None
    try:
        layers = layers_data(cache, entry, resolution)
    except InvalidParameter as exc:
        refused, resolution = {"value": resolution, "message": exc.message}, None
        layers = layers_data(cache, entry)
    model = model_data(cache, entry, resolution, layers.layers, wait_s=PAGE_WAIT_S)
    response = _render(request, "model.html", {"model": model, "layers": layers, "resolution": resolution,
                                               "refused": refused, "max_resolution": MAX_RESOLUTION,
                                               "graph": graph_outline(cache, entry, resolution),
                                               **zoo_pages.model_extras(model, layers)})
    if refused:
        response.status_code = 422
    return response


@router.get("/compare", response_class=HTMLResponse, include_in_schema=False)
def compare_page(request: Request, cache: Cache, models: str | None = None, add: str | None = None) -> Response:
    if add:  # the page's "add a model" form: back to the canonical address
        ids = [m for m in (models or "").split(",") if m.strip()] + [lookup_entry(add).id]
        return RedirectResponse(f"/compare?models={','.join(dict.fromkeys(ids))}", status_code=303)
    if models and not re.fullmatch(MODEL_LIST_PATTERN, models):
        raise InvalidParameter(f"models must be 1 to {MAX_COMPARE} model ids separated by commas, "
                               "e.g. models=vgg16,googlenet,mobilenet_v2.")
    compare = compare_data(cache, [lookup_entry(m) for m in parse_model_list(models)]) if models else None
    return _render(request, "compare.html", {"compare": compare, **zoo_pages.compare_extras(compare)})
