"""Small FastAPI dependencies: the analysis cache and the warm-up from app.state, catalog lookups."""

from __future__ import annotations

from fastapi import Request

from app.errors import UnknownModel
from app.analysis_cache import AnalysisCache
from app.warmup import Warmup
from models.catalog import ModelEntry
from models.registry import UnknownModelError, get_entry


def get_cache(request: Request) -> AnalysisCache:
    return request.app.state.analysis_cache


def get_warmup(request: Request) -> Warmup:
    return request.app.state.warmup


def analyse_missing(request: Request) -> bool:
    """Whether catalog-wide answers analyse what is missing before answering:
    only when no warm-up runs (``CONVZOO_WARM_CACHE=false``); with one, they
    answer at once and show what is not analysed yet as such."""
    return not request.app.state.settings.warm_cache


def lookup_entry(model_id: str) -> ModelEntry:
    try:
        return get_entry(model_id)
    except UnknownModelError as exc:
        raise UnknownModel(str(exc)) from None
