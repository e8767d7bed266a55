"""Small FastAPI dependencies: the analysis cache from app.state, catalog lookups."""

from __future__ import annotations

from fastapi import Request

from app.errors import UnknownModel
from app.analysis_cache import AnalysisCache
from models.catalog import ModelEntry
from models.registry import UnknownModelError, get_entry


def get_cache(request: Request) -> AnalysisCache:
    return request.app.state.analysis_cache


def lookup_entry(model_id: str) -> ModelEntry:
    try:
        return get_entry(model_id)
    except UnknownModelError as exc:
        raise UnknownModel(str(exc)) from None
