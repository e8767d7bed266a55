"""Presentation extras for the zoo pages (/, /models/{id}, /compare): figures,
table folding, picker choices. Only views of the page data; the facts come
from the *_data functions that the /api twins return."""

from __future__ import annotations

from typing import Any

from app.names import natural_key
from app.zoo.schemas import CatalogResponse, CompareResponse, LayersResponse, ModelDetail
from app.zoo.figures import architecture_figure, layer_costs_figure, profile_figure, stages_figure
from app.zoo.layer_stats import table_rows
from app.zoo.data import MAX_COMPARE
from models.registry import list_models

# Landmarks of the course, offered as one-click comparisons.
LANDMARKS = ("alexnet", "vgg16", "googlenet", "resnet50", "mobilenet_v2", "efficientnet_b0")


def _names() -> dict[str, str]:
    return {entry.id: entry.name for entry in list_models()}


def catalog_extras(catalog: CatalogResponse) -> dict[str, Any]:
    first_year: dict[str, int] = {}
    for card in catalog.models:
        first_year[card.family] = min(card.year, first_year.get(card.family, card.year))
    return {"families": sorted(first_year, key=lambda f: (first_year[f], f))}


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


def compare_extras(compare: CompareResponse | None) -> dict[str, Any]:
    chosen = [item.id for item in compare.models] if compare else []
    names = _names()
    extras: dict[str, Any] = {
        "chosen": chosen,
        "choices": [(e.family.name, e.id, e.name) for e in sorted(list_models(), key=lambda e: (natural_key(e.family.name), natural_key(e.name)))
                    if e.id not in chosen],
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
