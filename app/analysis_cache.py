"""Analyses cached in memory and on disk, keyed by model, resolution and
library versions; computed once even when many requests ask at the same time;
the whole catalog warmed in the background at start-up."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
import torchvision

from models.analysis import ANALYSIS_VERSION, Analysis, Totals, analyse_entry, input_shape_for
from models.catalog import ModelEntry
from models.registry import list_models

log = logging.getLogger("convzoo.analysis")


def versions_hash() -> str:
    text = f"torch={torch.__version__};torchvision={torchvision.__version__};timm={timm.__version__};analysis={ANALYSIS_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class WarmupProgress:
    total: int = 0
    done: int = 0
    failed: list[str] = field(default_factory=list)
    current: str | None = None
    running: bool = False
    seconds: float = 0.0


class AnalysisCache:
    def __init__(self, cache_dir: Path, memory_items: int = 256) -> None:
        self.directory = cache_dir / "analysis"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.versions = versions_hash()
        self._memory: OrderedDict[tuple[str, int, int], Analysis] = OrderedDict()
        self._memory_items = memory_items
        # Totals of every analysis seen by this process, for cards that must
        # not wait for an analysis; ``generation`` counts additions (cached
        # catalog answers are keyed by it).
        self._totals: dict[tuple[str, int, int], Totals] = {}
        self.generation = 0
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, int, int], threading.Lock] = {}
        self.traces = 0  # how many analyses were actually computed (tests read it)
        self.progress = WarmupProgress()
        self._stop = threading.Event()
        self._warmup_thread: threading.Thread | None = None

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
        """The totals if this model was analysed (in this process or on disk);
        never analyses, so a card or a page never waits for a trace."""
        _, _, height, width = input_shape_for(entry, resolution)
        key = (entry.id, height, width)
        totals = self._totals.get(key)
        if totals is None and self.path_for(entry, resolution).is_file():
            analysis = self._load(entry, resolution)
            if analysis is not None:
                with self._lock:
                    self._remember_totals(key, analysis)
                totals = analysis.totals
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
        analysis = analyse_entry(entry, resolution)
        self.traces += 1
        path = self.path_for(entry, resolution)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(analysis.to_dict(), separators=(",", ":")))
        tmp.replace(path)  # atomic: a reader never sees half a file
        return analysis

    def warm(self, entries: list[ModelEntry] | None = None, stop: threading.Event | None = None,
             then: Callable[[], object] | None = None) -> WarmupProgress:
        """Analyse every catalog entry at its own input size, logging progress,
        then run ``then`` (other start-up work that reads the analyses) before
        the warm-up reads as done; ``stop`` (the background run's) ends it
        between two models."""
        entries = entries if entries is not None else list_models()
        progress = self.progress
        progress.total, progress.done, progress.failed, progress.running = len(entries), 0, [], True
        start = time.perf_counter()
        for entry in entries:
            if stop is not None and stop.is_set():
                break
            progress.current = entry.id
            try:
                self.get(entry)
            except Exception:  # one broken model must not stop the warm-up
                log.exception("Warm-up: analysis of %s failed", entry.id)
                progress.failed.append(entry.id)
            progress.done += 1
            if progress.done % 10 == 0 or progress.done == progress.total:
                log.info("Warm-up: %d/%d models analysed (%.1f s)", progress.done, progress.total,
                         time.perf_counter() - start)
        if then is not None and not (stop is not None and stop.is_set()):
            progress.current = None
            then()
        progress.current, progress.running = None, False
        progress.seconds = time.perf_counter() - start
        return progress

    def start_warmup(self, then: Callable[[], object] | None = None) -> threading.Thread:
        """``warm`` in the background; progress reads as running from this call on."""
        entries = list_models()
        self.progress.total, self.progress.done, self.progress.running = len(entries), 0, True
        self._stop.clear()
        thread = threading.Thread(target=self.warm, args=(entries, self._stop, then), name="convzoo-warmup",
                                  daemon=True)
        thread.start()
        self._warmup_thread = thread
        return thread

    def stop(self, timeout_s: float = 60) -> None:
        """End the background warm-up after the model in hand (a thread killed
        inside torch at interpreter exit aborts the process)."""
        self._stop.set()
        if self._warmup_thread is not None:
            self._warmup_thread.join(timeout_s)
