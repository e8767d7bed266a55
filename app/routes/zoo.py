"""Health, catalog, model card, per-layer analysis and compare: JSON API.

The page routes for these live beside them (see pages in the same family)."""

from __future__ import annotations

from typing import Annotated

import timm
import torch
import torchvision
from fastapi import APIRouter, Depends, Query, Request

from app.deps import get_cache, lookup_entry
from app.schemas import CatalogResponse, CompareResponse, Health, LayersResponse, ModelDetail, WarmupStatus
from app.services.analysis_cache import AnalysisCache
from app.services.zoo import (MODEL_LIST_PATTERN, catalog_data, compare_data, layers_data, model_data,
                              parse_model_list)
from models.analysis import MAX_RESOLUTION

router = APIRouter()

Cache = Annotated[AnalysisCache, Depends(get_cache)]
Resolution = Annotated[int | None, Query(ge=1, le=MAX_RESOLUTION,
                                         description="Side of a square input, in pixels")]


@router.get("/api/health", response_model=Health)
def health(request: Request, cache: Cache) -> Health:
    progress = cache.progress
    return Health(
        status="ok", device=str(request.app.state.device),
        versions={"torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__},
        warmup=WarmupStatus(total=progress.total, done=progress.done, failed=progress.failed,
                            running=progress.running, current=progress.current),
    )


@router.get("/api/models", response_model=CatalogResponse)
def api_models(cache: Cache) -> CatalogResponse:
    return catalog_data(cache)


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
