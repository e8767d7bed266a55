"""Small FastAPI dependencies: the analysis cache and the warm-up from app.state, catalog lookups."""

from __future__ import annotations

import difflib

from fastapi import Request

from app.errors import UnknownModel
from app.analysis_cache import AnalysisCache
from app.warmup import Warmup
from app.names import folded as _folded
from models.catalog import ModelEntry
from models.registry import UnknownModelError, get_entry, list_models


def get_cache(request: Request) -> AnalysisCache:
    return request.app.state.analysis_cache


def get_warmup(request: Request) -> Warmup:
    return request.app.state.warmup


def near_misses(model_id: str, limit: int = 3) -> list[ModelEntry]:
    """Models the reader probably meant: the same id or name in another case or spelling first,
    then close spellings (difflib's ratio, the stdlib's fuzzy matcher)."""
    wanted = _folded(model_id)
    entries = list_models()
    same = [e for e in entries if wanted in (_folded(e.id), _folded(e.name))]
    folded = {_folded(e.id): e for e in entries}
    close = [folded[k] for k in difflib.get_close_matches(wanted, list(folded), n=limit, cutoff=0.75)]
    return (same or close)[:limit]


def lookup_entry(model_id: str) -> ModelEntry:
    try:
        return get_entry(model_id)
    except UnknownModelError as exc:
        suggestions = [] if exc.uploaded else near_misses(model_id)
        hint = f" Did you mean {' or '.join(e.id for e in suggestions)}?" if suggestions else ""
        raise UnknownModel(str(exc) + hint, model_id=model_id,
                           suggestions=[(e.id, e.name) for e in suggestions], uploaded=exc.uploaded) from None
