"""Analyses cached in memory and on disk, keyed by model, resolution and
library versions; computed once per process even when many requests ask at
the same time, in the analysis pool's worker processes when the app has one
(app/analysis_pool.py), so that tracing never holds a web worker's GIL."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import timm
import torch
import torchvision

from app.analysis_pool import AnalysisPool
from app.state_store import write_atomically
from models.analysis import ANALYSIS_VERSION, Analysis, Totals, analyse_entry, input_shape_for
from models.catalog import ModelEntry
from models.registry import list_models

log = logging.getLogger("convzoo.analysis")


def versions_hash() -> str:
    text = f"torch={torch.__version__};torchvision={torchvision.__version__};timm={timm.__version__};analysis={ANALYSIS_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class AnalysisCache:
    """``pool``: where cold analyses run; None computes them in the calling
    thread (the CLI and benchmarks, where one analysis is not worth starting
    a process)."""

    def __init__(self, cache_dir: Path, memory_items: int = 256, pool: AnalysisPool | None = None) -> None:
        self.directory = cache_dir / "analysis"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.versions = versions_hash()
        self.pool = pool
        self._memory: OrderedDict[tuple[str, int, int], Analysis] = OrderedDict()
        self._memory_items = memory_items
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, int, int], threading.Lock] = {}
        self._totals: dict[str, Totals] = {}  # model id -> totals at its own input size: the catalog's cards
        self.traces = 0  # how many analyses this process asked to compute (tests read it)

    def path_for(self, entry: ModelEntry, resolution: int | None) -> Path:
        _, _, height, width = input_shape_for(entry, resolution)
        return self.directory / f"{entry.id}-{height}x{width}-{self.versions}.json"

    def get(self, entry: ModelEntry, resolution: int | None = None) -> Analysis:
        """The analysis, from memory, disk, or a fresh trace (raises AnalysisError)."""
        _, _, height, width = input_shape_for(entry, resolution)
        key = (entry.id, height, width)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one trace per key, however many ask at once
            with self._lock:
                if key in self._memory:
                    return self._memory[key]
            analysis = self._load(entry, resolution) or self._compute(entry, resolution)
            self._remember(entry, key, analysis)
            with self._lock:
                self._key_locks.pop(key, None)
        return analysis

    def get_all(self, entries: list[ModelEntry]) -> list[Analysis]:
        """``get`` for each entry at its own input size, the ones on neither
        memory nor disk analysed side by side in the pool's processes first
        (the catalog when no warm-up runs). Raises as ``get`` does."""
        if self.pool is not None:
            missing = [e for e in entries if self.peek(e) is None and _registered(e)]
            futures = [self.pool.submit(e.id, None, self.path_for(e, None), return_data=False) for e in missing]
            self.traces += len(futures)
            for future in futures:
                try:
                    future.result()
                except Exception:  # that model's get() below raises it again, for its caller
                    continue
        return [self.get(entry) for entry in entries]

    def peek(self, entry: ModelEntry, resolution: int | None = None) -> Analysis | None:
        """The analysis if memory or disk has it, else None: never computes
        (the catalog shows what is not analysed yet as such)."""
        _, _, height, width = input_shape_for(entry, resolution)
        key = (entry.id, height, width)
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        analysis = self._load(entry, resolution)
        if analysis is not None:
            self._remember(entry, key, analysis)
        return analysis

    def card_totals(self, entry: ModelEntry) -> Totals | None:
        """The totals at the model's own input size if it is analysed, else
        None; never computes. Kept for every model once seen (a few hundred
        bytes each, unlike whole analyses), so a catalog of ~1,500 cards reads
        each file at most once per process."""
        totals = self._totals.get(entry.id)
        if totals is None:
            analysis = self.peek(entry)
            totals = analysis.totals if analysis is not None else None
        return totals

    def _remember(self, entry: ModelEntry, key: tuple[str, int, int], analysis: Analysis) -> None:
        if key[1:] == tuple(entry.input_size[1:]):
            self._totals[entry.id] = analysis.totals
        with self._lock:
            self._memory[key] = analysis
            self._memory.move_to_end(key)
            while len(self._memory) > self._memory_items:
                self._memory.popitem(last=False)

    def forget(self, model_id: str) -> None:
        """Drop a model's analyses from memory and disk (a user's network evicted from its store)."""
        with self._lock:
            for key in [k for k in self._memory if k[0] == model_id]:
                del self._memory[key]
            self._totals.pop(model_id, None)
        for path in self.directory.glob(f"{model_id}-*x*-{self.versions}.json"):
            path.unlink(missing_ok=True)

    def _load(self, entry: ModelEntry, resolution: int | None) -> Analysis | None:
        path = self.path_for(entry, resolution)
        try:
            return Analysis.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("Ignoring unreadable cache file %s", path)
            return None

    def _compute(self, entry: ModelEntry, resolution: int | None) -> Analysis:
        self.traces += 1
        path = self.path_for(entry, resolution)
        if self.pool is not None and _registered(entry):
            return Analysis.from_dict(self.pool.analyse(entry.id, resolution, path))
        # In this thread: no pool, or an entry a pool process could not look up by id.
        analysis = analyse_entry(entry, resolution)
        write_atomically(path, json.dumps(analysis.to_dict(), separators=(",", ":")))
        return analysis


def _registered(entry: ModelEntry) -> bool:
    """In the catalog, so a pool process can rebuild it from its id; a user's
    network (app/custom) lives in this process's store only."""
    return any(catalog_entry.id == entry.id for catalog_entry in list_models())
