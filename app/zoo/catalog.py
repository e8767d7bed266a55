"""The catalog's filters, sorting and paging, done on the server for 1,460
models: the page (/) and its twin (/api/models) take the same query.

Search forgives case, spaces, hyphens, underscores and dots ("ResNet 50",
"resnet-50" and "resnet_50" all find resnet50); names sort naturally
(ResNet-18 < ResNet-34 < ResNet-50 < ResNet-101)."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel

from app.errors import InvalidParameter
from app.names import folded, natural_key
from app.schemas import ModelCard
from app.zoo.schemas import CatalogResponse

SortKey = Literal["name", "family", "year", "params", "macs", "top1", "source"]

_SI = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
# A count with an optional SI suffix: 5000000, 5M, 1.5G.
QUANTITY_PATTERN = r"^\s*\d+(\.\d+)?\s*[kKMGT]?\s*$"


def parse_quantity(text: str | None) -> float | None:
    """'5M' -> 5e6; None or '' -> None."""
    if text is None or not text.strip():
        return None
    if not re.fullmatch(QUANTITY_PATTERN, text):
        raise InvalidParameter(f"{text!r} is not a count; write e.g. 5000000, 5M or 1.5G.")
    text = text.strip()
    suffix = text[-1] if text[-1] in _SI and not text[-1].isdigit() else ""
    return float(text[: len(text) - len(suffix)]) * _SI[suffix]


# app/names.py's folded form; the catalog's names are folded once, not per request
normalise = lru_cache(maxsize=16384)(folded)


def in_families(family: str, wanted: list[str]) -> bool:
    """Whether ``family`` is one of ``wanted`` (or nothing is wanted), spellings
    compared as ``normalise`` reads them: torchvision's "ConvNeXt" and timm's
    module "convnext" are one family."""
    return not wanted or normalise(family) in {normalise(name) for name in wanted}


def chosen_families(names: list[str], wanted: list[str]) -> set[str]:
    """The names among a filter's choices that ``wanted`` asks for (none when nothing is)."""
    return {name for name in names if wanted and in_families(name, wanted)}


def family_choices(families: list[str]) -> list[tuple[str, int]]:
    """(name, how many) per family, sorted naturally; spellings that
    ``normalise`` alike are one family, named by its capitalised spelling
    (the paper's, as torchvision writes it) where there is one."""
    counts = Counter(normalise(name) for name in families)
    names: dict[str, str] = {}
    for name in families:
        key = normalise(name)
        if key not in names or (names[key].islower() and not name.islower()):
            names[key] = name
    return sorted(((names[key], n) for key, n in counts.items()), key=lambda kv: natural_key(kv[0]))


Quantity = Annotated[str | None, Query(pattern=QUANTITY_PATTERN, description="a count, e.g. 5000000, 5M, 1.5G")]


class CatalogQuery(BaseModel):
    """Filters, sort and page; every field optional, and none set returns every model."""

    q: str | None = None
    family: list[str] = []
    source: list[Literal["torchvision", "timm", "classic"]] = []
    pretrain: list[str] = []
    year_min: int | None = None
    year_max: int | None = None
    params_min: str | None = None
    params_max: str | None = None
    macs_min: str | None = None
    macs_max: str | None = None
    top1_min: float | None = None
    top1_max: float | None = None
    sort: SortKey = "year"
    order: Literal["asc", "desc"] = "asc"
    page: int = 1
    per_page: int | None = None

    def is_default(self) -> bool:
        return self == CatalogQuery()


def catalog_query(
    q: Annotated[str | None, Query(max_length=200, description="search in id, name and family")] = None,
    family: Annotated[list[str], Query(description="one or more families (timm: its model module), case and "
                                                   "punctuation ignored: convnext is also ConvNeXt")] = [],  # noqa: B006
    source: Annotated[list[Literal["torchvision", "timm", "classic"]], Query()] = [],  # noqa: B006
    pretrain: Annotated[list[str], Query(description="pre-training data of the accuracy's weights: in1k, in21k ...")] = [],  # noqa: B006,E501
    year_min: Annotated[int | None, Query(ge=1900, le=2100)] = None,
    year_max: Annotated[int | None, Query(ge=1900, le=2100)] = None,
    params_min: Quantity = None, params_max: Quantity = None,
    macs_min: Quantity = None, macs_max: Quantity = None,
    top1_min: Annotated[float | None, Query(ge=0, le=100)] = None,
    top1_max: Annotated[float | None, Query(ge=0, le=100)] = None,
    sort: SortKey = "year",
    order: Literal["asc", "desc"] = "asc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int | None, Query(ge=1, le=2000, description="default: every match on one page")] = None,
) -> CatalogQuery:
    """The query parameters of / and /api/models (a FastAPI dependency)."""
    return CatalogQuery(q=q, family=family, source=source, pretrain=pretrain, year_min=year_min,
                        year_max=year_max, params_min=params_min, params_max=params_max, macs_min=macs_min,
                        macs_max=macs_max, top1_min=top1_min, top1_max=top1_max, sort=sort, order=order,
                        page=page, per_page=per_page)


def _in_range(value: float | None, low: float | None, high: float | None, unknown_passes: bool) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return unknown_passes
    return (low is None or value >= low) and (high is None or value <= high)


def matches(card: ModelCard, query: CatalogQuery, ranges: dict[str, tuple], unknown_passes: bool = False) -> bool:
    """``unknown_passes``: a range filter lets a card without that value through (no year,
    no top-1, params and MACs not worked out yet); by default it drops it."""
    if query.q:
        haystack = normalise(f"{card.id} {card.name} {card.family}")
        words = [normalise(w) for w in query.q.split()]
        if normalise(query.q) not in haystack and not all(w in haystack for w in words if w):
            return False
    return (in_families(card.family, query.family)
            and (not query.source or card.source in query.source)
            and (not query.pretrain or card.pretrain in query.pretrain)
            and _in_range(card.year, query.year_min, query.year_max, unknown_passes)
            and _in_range(card.params, *ranges["params"], unknown_passes)
            and _in_range(card.macs, *ranges["macs"], unknown_passes)
            and _in_range(card.top1, query.top1_min, query.top1_max, unknown_passes))


def _sort_key(key: SortKey):
    if key in ("name", "family", "source"):
        return lambda c: natural_key(getattr(c, key))
    return lambda c: getattr(c, key)


def select(cards: list[ModelCard], query: CatalogQuery) -> CatalogResponse:
    """The cards the query asks for: filtered, sorted (unknown values last,
    ties by name, naturally) and paged; ``total`` counts every match."""
    ranges = {"params": (parse_quantity(query.params_min), parse_quantity(query.params_max)),
              "macs": (parse_quantity(query.macs_min), parse_quantity(query.macs_max))}
    loose = [c for c in cards if matches(c, query, ranges, unknown_passes=True)]
    chosen = [c for c in loose if matches(c, query, ranges)]
    unknown = len(loose) - len(chosen)
    chosen.sort(key=lambda c: natural_key(c.name))
    value = _sort_key(query.sort)
    known = [c for c in chosen if value(c) is not None]
    known.sort(key=value, reverse=query.order == "desc")
    chosen = known + [c for c in chosen if value(c) is None]
    total = len(chosen)
    if query.per_page is not None:
        start = (query.page - 1) * query.per_page
        chosen = chosen[start:start + query.per_page]
    return CatalogResponse(models=chosen, total=total, page=query.page, per_page=query.per_page,
                           unknown_left_out=unknown)
