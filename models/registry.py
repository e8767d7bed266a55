"""One registry of the zoo, in the manner of timm: ids map to catalog entries.

Registration fails loudly on a duplicate id. This module is a leaf: it knows
nothing of the entries beyond their ``id``. The catalog registers its entries
when the ``models`` package is imported (``models/__init__.py``), so by the
time anyone can call ``list_models`` the zoo is in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Entry(Protocol):
    """What the registry needs of an entry: its id."""

    id: str


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}  # another name -> the id it stands for (timm-inception_v4 -> inception_v4)

# What a model id looks like, in every route pattern and schema: zoo ids
# (vgg16), timm-<arch>, onnx-<hex>.
MODEL_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
# (id prefix, a function that finds entries made at run time -- a user's own
# network: models/custom.py, app/custom/store.py -- or returns None); asked
# after the catalog, newest first (each app registers its own store).
_RESOLVERS: list[tuple[str, Callable[[str], Entry | None]]] = []


class UnknownModelError(KeyError):
    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        self.model_id = model_id

    def __str__(self) -> str:
        return f"No model with id {self.model_id!r} in the zoo; GET /api/models lists them."


def register_model(entry: Entry) -> Entry:
    if entry.id in _REGISTRY:
        raise ValueError(f"Duplicate model id {entry.id!r}")
    _REGISTRY[entry.id] = entry
    return entry


def register_alias(alias: str, model_id: str) -> None:
    if alias in _REGISTRY or alias in _ALIASES:
        raise ValueError(f"Duplicate model id {alias!r}")
    _ALIASES[alias] = model_id


def list_models() -> list[Entry]:
    return list(_REGISTRY.values())


def register_resolver(prefix: str, resolve: Callable[[str], Entry | None]) -> None:
    """Ids starting with ``prefix`` are also looked up by ``resolve``."""
    if (prefix, resolve) not in _RESOLVERS:
        _RESOLVERS.insert(0, (prefix, resolve))


def get_entry(model_id: str) -> Entry:
    """The entry ``model_id`` names, following aliases: the answer's ``id`` then
    differs from ``model_id`` (pages and APIs redirect to it). The one lookup
    of a model id: the catalog, its aliases, then the run-time resolvers."""
    model_id_or_target = _ALIASES.get(model_id, model_id)
    if model_id_or_target in _REGISTRY:
        return _REGISTRY[model_id_or_target]
    for prefix, resolve in _RESOLVERS:
        if model_id.startswith(prefix):
            entry = resolve(model_id)
            if entry is not None:
                return entry
    raise UnknownModelError(model_id)
