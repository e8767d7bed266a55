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
from models.registry import UnknownModelError, list_models

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
        # Totals of every analysis seen by this process, for cards that must
        # not wait for an analysis; ``generation`` counts additions (cached
        # catalog answers are keyed by it).
        self._totals: dict[tuple[str, int, int], Totals] = {}
        self.generation = 0
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, int, int], threading.Lock] = {}
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
            with self._lock:
                self._remember_totals(key, analysis)
                self._memory[key] = analysis
                while len(self._memory) > self._memory_items:
                    self._memory.popitem(last=False)
                self._key_locks.pop(key, None)
        return analysis

    def _remember_totals(self, key: tuple[str, int, int], analysis: Analysis) -> None:
        if key not in self._totals:
            self._totals[key] = analysis.totals
            self.generation += 1

    def peek_totals(self, entry: ModelEntry, resolution: int | None = None) -> Totals | None:
        """The totals if this model was analysed (by this process, or on disk by
        any worker or pool process); never analyses, so a card or a page never
        waits for a trace. Kept for every model once seen (a few hundred bytes
        each, unlike whole analyses): each file is read at most once per process."""
        _, _, height, width = input_shape_for(entry, resolution)
        key = (entry.id, height, width)
        totals = self._totals.get(key)
        if totals is None:
            totals = _read_totals(self.path_for(entry, resolution))
            if totals is not None:
                with self._lock:
                    if key not in self._totals:
                        self._totals[key] = totals
                        self.generation += 1
        return totals

    def forget(self, model_id: str) -> None:
        """Drop a model's analyses from memory and disk (a user's network evicted from its store)."""
        with self._lock:
            for key in [k for k in self._memory if k[0] == model_id]:
                del self._memory[key]
            for key in [k for k in self._totals if k[0] == model_id]:
                del self._totals[key]
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
        if self.pool is not None and registered(entry):
            try:
                return Analysis.from_dict(self.pool.analyse(entry.id, resolution, path))
            except UnknownModelError:  # registered at run time in this process only: a fresh one lacks it
                pass
        # In this thread: no pool, or an entry a pool process could not look up by id.
        analysis = analyse_entry(entry, resolution)
        write_atomically(path, json.dumps(analysis.to_dict(), separators=(",", ":")))
        return analysis


# A cache file opens with its input shape and totals (Analysis.to_dict's field order): the
# catalog's cards read those bytes only, not a whole file (up to a few MB of rows per net:
# reading all 1,456 whole took ~8 s of a web worker's GIL, the first time it listed the catalog).
_HEAD_BYTES = 4096


def _read_totals(path: Path) -> Totals | None:
    """The totals of the analysis in ``path``, or None (no file, or unreadable)."""
    try:
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES).decode("utf-8", "replace")
        start = head.index('"totals":') + len('"totals":')
        totals, _ = json.JSONDecoder().raw_decode(head, start)
        return Totals(**totals)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, OSError):  # another layout, or a damaged file: read it whole
        try:
            return Analysis.from_dict(json.loads(path.read_text())).totals
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("Ignoring unreadable cache file %s", path)
            return None


def registered(entry: ModelEntry) -> bool:
    """In the catalog, so a pool process can rebuild it from its id; a user's
    network (app/custom) lives in this process's store only."""
    return any(catalog_entry.id == entry.id for catalog_entry in list_models())
