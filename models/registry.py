"""One registry of the zoo, in the manner of timm: ids map to catalog entries.

Registration fails loudly on a duplicate id. The catalog module registers its
entries when first imported; ``list_models`` and ``get_entry`` import it on
demand, so callers never depend on import order.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.catalog import ModelEntry

_REGISTRY: dict[str, ModelEntry] = {}
_ALIASES: dict[str, str] = {}  # another name -> the id it stands for (timm-inception_v4 -> inception_v4)

# What a model id looks like, in every route pattern and schema: zoo ids
# (vgg16), timm-<arch>, onnx-<hex>.
MODEL_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"


class UnknownModelError(KeyError):
    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        self.model_id = model_id

    def __str__(self) -> str:
        return f"No model with id {self.model_id!r} in the zoo; GET /api/models lists them."


def register_model(entry: ModelEntry) -> ModelEntry:
    if entry.id in _REGISTRY:
        raise ValueError(f"Duplicate model id {entry.id!r}")
    _REGISTRY[entry.id] = entry
    return entry


def register_alias(alias: str, model_id: str) -> None:
    if alias in _REGISTRY or alias in _ALIASES:
        raise ValueError(f"Duplicate model id {alias!r}")
    _ALIASES[alias] = model_id


def _loaded() -> dict[str, ModelEntry]:
    importlib.import_module("models.catalog")
    return _REGISTRY


def list_models() -> list[ModelEntry]:
    return list(_loaded().values())


def get_entry(model_id: str) -> ModelEntry:
    """The entry ``model_id`` names, following aliases: the answer's ``id`` then
    differs from ``model_id`` (pages and APIs redirect to it). The one lookup
    of a model id."""
    registry = _loaded()
    try:
        return registry[_ALIASES.get(model_id, model_id)]
    except KeyError:
        raise UnknownModelError(model_id) from None
