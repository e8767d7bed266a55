"""Health, catalog, model card, per-layer analysis and compare: the JSON API
and, beside each, its page (/, /models/{id}, /compare)."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated

import timm
import torch
import torchvision
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.deps import analyse_missing, get_cache, get_warmup, lookup_entry
from app.errors import InvalidParameter
from app.schemas import Health, WarmupStatus
from app.zoo.graph import graph_data, graph_outline, graph_svg
from app.zoo.schemas import CatalogResponse, CompareResponse, GraphResponse, LayersResponse, ModelDetail
from app.zoo import pages as zoo_pages
from app.analysis_cache import AnalysisCache
from app.warmup import Warmup
from app.zoo.data import (MAX_COMPARE, MODEL_LIST_PATTERN, catalog_data, compare_data, layers_csv, layers_data,
                              model_data, parse_model_list)
from models.analysis import MAX_RESOLUTION

router = APIRouter()

Cache = Annotated[AnalysisCache, Depends(get_cache)]
AnalyseMissing = Annotated[bool, Depends(analyse_missing)]
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


@router.get("/api/models", response_model=CatalogResponse)
def api_models(cache: Cache, complete: AnalyseMissing) -> CatalogResponse:
    return catalog_data(cache, complete)


@router.get("/api/models/{model_id}", response_model=ModelDetail)
def api_model(model_id: str, cache: Cache, resolution: Resolution = None) -> ModelDetail:
    return model_data(cache, lookup_entry(model_id), resolution)


@router.get("/api/models/{model_id}/layers", response_model=LayersResponse)
def api_layers(model_id: str, cache: Cache, resolution: Resolution = None) -> LayersResponse:
    return layers_data(cache, lookup_entry(model_id), resolution)


ModelList = Annotated[str, Query(pattern=MODEL_LIST_PATTERN,
                                 description="1 to 6 model ids, comma-separated, e.g. vgg16,googlenet")]


@router.get("/api/compare", response_model=CompareResponse)
def api_compare(cache: Cache, models: ModelList) -> CompareResponse:
    return compare_data(cache, [lookup_entry(model_id) for model_id in parse_model_list(models)])


@router.get("/api/models/{model_id}/layers.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "The per-layer table as CSV."}})
def api_layers_csv(model_id: str, cache: Cache, resolution: Resolution = None) -> Response:
    data = layers_data(cache, lookup_entry(model_id), resolution)
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
def catalog_page(request: Request, cache: Cache, complete: AnalyseMissing, warmup: WarmupState) -> HTMLResponse:
    """While the start-up analysis runs, the catalog shows its progress and
    marks the models not analysed yet; it never waits for them."""
    catalog = catalog_data(cache, complete)
    return _render(request, "catalog.html", {"catalog": catalog, "warmup": warmup.progress,
                                             **zoo_pages.catalog_extras(catalog)})


@router.get("/models/{model_id}", response_class=HTMLResponse, include_in_schema=False)
def model_page(request: Request, model_id: str, cache: Cache, resolution: Resolution = None) -> HTMLResponse:
    """A resolution the model can't take keeps the reader on this page (422): the model at its own
    size, the form holding what they typed, and why, beside it."""
    entry = lookup_entry(model_id)
    refused = None
    try:
        layers = layers_data(cache, entry, resolution)
    except InvalidParameter as exc:
        refused, resolution = {"value": resolution, "message": exc.message}, None
        layers = layers_data(cache, entry)
    model = model_data(cache, entry, resolution, layers.layers)
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
