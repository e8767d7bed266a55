"""Presentation extras for the zoo pages (/, /models/{id}, /compare): figures,
table folding, picker choices. Only views of the page data; the facts come
from the *_data functions that the /api twins return."""

from __future__ import annotations

import functools
import json
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from app.names import natural_key
from app.zoo.schemas import CatalogResponse, CompareResponse, LayersResponse, ModelDetail
from app.zoo.figures import architecture_figure, layer_costs_figure, profile_figure, stages_figure
from app.zoo.layer_stats import table_rows
from app.schemas import ModelCard
from app.zoo.catalog import CatalogQuery, chosen_families, family_choices
from app.zoo.data import MAX_COMPARE
from models.registry import list_models

# Landmarks of the course, offered as one-click comparisons.
LANDMARKS = ("alexnet", "vgg16", "googlenet", "resnet50", "mobilenet_v2", "efficientnet_b0")


def _names() -> dict[str, str]:
    return {entry.id: entry.name for entry in list_models()}


CATALOG_PAGE_SIZE = 100
# Columns of the catalog table that sort, with their first order.
CATALOG_COLUMNS = (("name", "Model", "asc"), ("family", "Family", "asc"), ("year", "Year", "asc"),
                   ("params", "Params", "asc"), ("macs", "MACs", "asc"), ("top1", "Top-1 %", "desc"))


def _catalog_url(query: CatalogQuery, selected: list[str], **changes: Any) -> str:
    """The catalog's address for ``query`` with ``changes``: only what differs from the defaults."""
    values = {**query.model_dump(), **changes}
    defaults = CatalogQuery().model_dump() | {"per_page": CATALOG_PAGE_SIZE}
    params = [(k, v) for k, v in values.items() if v != defaults[k] and v not in (None, "", [])]
    pairs = [(k, item) for k, v in params for item in (v if isinstance(v, list) else [v])]
    if selected:
        pairs.append(("selected", ",".join(selected)))
    return "/?" + urlencode(pairs) if pairs else "/"


def catalog_extras(cards: list[ModelCard], query: CatalogQuery, page: CatalogResponse,
                   selected: str | None) -> dict[str, Any]:
    """Filter choices with their counts, sort and page links, and the ticked
    models -- all carried in the address, so Back and a shared link give the same page."""
    known = {card.id for card in cards}
    chosen = [m for m in dict.fromkeys(p.strip() for p in (selected or "").split(",")) if m in known][:MAX_COMPARE]
    pretrains = Counter(card.pretrain for card in cards if card.pretrain)
    pages = max(1, -(-page.total // (query.per_page or CATALOG_PAGE_SIZE)))
    sort_links = []
    for key, label, first in CATALOG_COLUMNS:
        current = query.sort == key
        order = ("desc" if query.order == "asc" else "asc") if current else first
        aria = ("ascending" if query.order == "asc" else "descending") if current else None
        sort_links.append({"key": key, "label": label, "url": _catalog_url(query, chosen, sort=key, order=order,
                                                                            page=1), "aria_sort": aria})
    names = {card.id: card.name for card in cards}
    twin = _catalog_url(query, [], per_page=None)[1:]  # "?..." or "": per_page is added below, always
    return {
        "families": (families := family_choices([card.family for card in cards])),
        "families_chosen": chosen_families([name for name, _ in families], query.family),
        "sources": sorted(Counter(card.source for card in cards).items()),
        "pretrains": sorted(pretrains.items(), key=lambda kv: -kv[1]),
        "query": query,
        "analysed": sum(card.analysed for card in cards),
        "all_count": len(cards),
        "sort_links": sort_links,
        "pages": pages,
        "prev_url": _catalog_url(query, chosen, page=min(query.page - 1, pages)) if query.page > 1 else None,
        "next_url": _catalog_url(query, chosen, page=query.page + 1) if query.page < pages else None,
        "selected": [(m, names[m]) for m in chosen],
        "selected_names_json": json.dumps({m: names[m] for m in chosen}),
        "compare_url": "/compare?models=" + ",".join(chosen) if chosen else None,
        "max_compare": MAX_COMPARE,
        # per_page always: the page's default size is not /api/models' (every match on one page)
        "json_url": f"/api/models{twin}{'&' if twin else '?'}per_page={query.per_page or CATALOG_PAGE_SIZE}",
        "past_last_url": _catalog_url(query, chosen, page=pages) if query.page > pages else None,
    }


def _largest(layers: LayersResponse, key) -> Any:
    leaves = [layer for layer in layers.layers if layer.is_leaf]
    return max(leaves, key=key) if leaves else None


def model_extras(model: ModelDetail, layers: LayersResponse) -> dict[str, Any]:
    totals = layers.totals
    bytes_per_element = totals.activation_bytes // max(totals.activation_elements, 1)
    rows = table_rows(layers.layers, totals)
    names = _names()
    others = [m for m in LANDMARKS if m != model.id]
    largest_params = _largest(layers, lambda layer: layer.params)
    largest_activations = _largest(layers, lambda layer: layer.activation_elements)
    return {
        "rows": rows,
        "bytes_per_element": bytes_per_element,
        "figures": {"costs": layer_costs_figure(layers.layers, bytes_per_element),
                    "architecture": architecture_figure(rows, layers.input_shape)},
        "largest_params": largest_params,
        "largest_activations": largest_activations,
        "largest_params_late": bool(largest_params and largest_activations) and (
            layers.layers.index(largest_params) > layers.layers.index(largest_activations)),
        "compare_links": [(f"/compare?models={model.id},{m}", names[m]) for m in others[:4]],
        "compare_classics": "/compare?models=" + ",".join(
            dict.fromkeys([model.id, "googlenet", "mobilenet_v2"])),
    }


@functools.lru_cache(maxsize=1)
def _picker_choices(ids: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """Every model as (family, id, name) in the compare picker's natural order, kept until the
    catalog's ids change: sorting 1,456 entries by natural keys was a quarter of a compare page."""
    return [(e.family.name, e.id, e.name) for e in sorted(list_models(), key=lambda e: (
        natural_key(e.family.name), natural_key(e.name)))]


def compare_extras(compare: CompareResponse | None) -> dict[str, Any]:
    chosen = [item.id for item in compare.models] if compare else []
    names = _names()
    extras: dict[str, Any] = {
        "chosen": chosen,
        "choices": [choice for choice in _picker_choices(tuple(e.id for e in list_models())) if choice[1] not in chosen],
        "can_add": len(chosen) < MAX_COMPARE,
        "remove_links": {m: "/compare?models=" + ",".join(o for o in chosen if o != m) for m in chosen},
        "suggestions": [(f"/compare?models={','.join(ids)}", " vs ".join(names[i] for i in ids)) for ids in (
            ("vgg16", "googlenet", "mobilenet_v2"), ("alexnet", "alexnet_paper", "zfnet"),
            ("resnet50", "densenet121", "efficientnet_b0"), ("resnet50", "vit_b_16", "convnext_tiny"))],
        "figures": {},
    }
    if compare and compare.models:
        extras["figures"] = {"profile": profile_figure(compare.models), "stages": stages_figure(compare.models)}
    return extras
