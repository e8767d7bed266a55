"""The start-up warm-up: every catalog entry analysed at its own input size
(and timm's at their top-1 side),
once per server however many worker processes it has, in the analysis pool's
processes, persisted in the disk cache, resumable after a restart.

Every web worker runs a ``Warmup`` thread; the one that claims the ``warmup``
lease in the shared store does the work, the others wait and take over if its
lease lapses (the worker died). Progress lives in the store, so ``/`` and
``/api/health`` read the same from every worker. Resuming needs no journal:
the disk cache is the record, and an entry whose file exists counts as done
at once; entries whose analysis failed are remembered in the progress
document (for these library versions) and not retried on every start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import asdict, dataclass, field

from app.analysis_cache import AnalysisCache
from app.state_store import Heartbeat, StateStore, new_owner
from models.analysis import MAX_RESOLUTION
from models.catalog import ModelEntry
from models.registry import list_models

log = logging.getLogger("convzoo.warmup")

LEASE = "warmup"
LEASE_TTL_S = 15.0
HEARTBEAT_S = 3.0


@dataclass
class WarmupProgress:
    total: int = 0
    done: int = 0  # analysed, now or before (on disk), or failed
    failed: list[str] = field(default_factory=list)
    current: str | None = None  # the latest entry handed to the pool
    running: bool = False
    seconds: float = 0.0
    analysed_now: int = 0  # traced by this run (the rest were on disk already)


class Warmup:
    """One web worker's part in the warm-up: ``start`` it at start-up; it runs
    the warm-up if it claims the lease, else waits for the worker that did."""

    def __init__(self, cache: AnalysisCache, store: StateStore) -> None:
        if cache.pool is None:
            raise ValueError("the warm-up analyses in the cache's process pool; give the AnalysisCache one")
        self.cache = cache
        self.store = store
        self.owner = new_owner()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_run: WarmupProgress | None = None  # what this process's own run did, if it ran one

    @property
    def progress(self) -> WarmupProgress:
        """As the store has it: the same from every worker process."""
        body = self.store.get("warmup", self.cache.versions)
        return WarmupProgress() if body is None else WarmupProgress(**body)

    def _save(self, progress: WarmupProgress) -> None:
        self.store.put("warmup", self.cache.versions, asdict(progress))

    def start(self, then: Callable[[], object] | None = None, entries: list[ModelEntry] | None = None) -> None:
        """Warm ``entries`` (default: the whole catalog) in the background; the
        progress reads as running from this call on."""
        entries = entries if entries is not None else list_models()
        if self.store.holder(LEASE) is None:
            previous = self.progress
            self._save(WarmupProgress(total=len(entries), done=previous.done if previous.running else 0,
                                      failed=previous.failed, running=True))
        self._stop.clear()
        self._thread = threading.Thread(target=self._claim_and_run, args=(entries, then), name="convzoo-warmup",
                                        daemon=True)
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> None:
        """Until this worker's part is over: it ran the warm-up, or saw another worker finish it."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def stop(self, timeout_s: float = 60) -> None:
        """End after the models in hand, handing the lease back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _claim_and_run(self, entries: list[ModelEntry], then: Callable[[], object] | None) -> None:
        while not self._stop.is_set():
            progress = self.progress
            if not progress.running and progress.total == len(entries):
                return  # another worker has done it
            if self.store.claim(LEASE, self.owner, LEASE_TTL_S) is None:
                try:
                    self.last_run = self.run(entries, then)
                finally:
                    self.store.release(LEASE, self.owner)
                return
            self._stop.wait(1.0)  # another worker warms: wait, and take over if its lease lapses

    def run(self, entries: list[ModelEntry] | None = None, then: Callable[[], object] | None = None) -> WarmupProgress:
        """Analyse every entry not yet on disk (those that failed before under
        these library versions are not retried), ``pool.processes`` at a time
        so that a request's cold analysis waits for at most one round; then each
        timm entry at the side its top-1 was measured at, where that differs
        (a meta trace: as cheap as the first; the accuracy chart's points need
        it); then run ``then`` (start-up work that reads the analyses) before
        reading as done. ``done`` and ``total`` count models (the first pass)."""
        entries = entries if entries is not None else list_models()
        previous = self.progress
        known_failures = set(previous.failed)
        start = time.perf_counter()
        progress = WarmupProgress(total=len(entries), running=True)
        todo: list[ModelEntry] = []
        for entry in entries:
            if entry.id in known_failures:
                progress.failed.append(entry.id)
            elif not self.cache.path_for(entry, None).exists():
                todo.append(entry)
        progress.done = len(entries) - len(todo)
        self._save(progress)
        log.info("Warm-up: %d of %d models on disk already, %d to analyse", progress.done, len(entries), len(todo))
        with Heartbeat(self.store, LEASE, self.owner, LEASE_TTL_S, HEARTBEAT_S):
            for entry, ok in self._analyse(progress, [(entry, None) for entry in todo]):
                progress.analysed_now += ok
                progress.done += 1
                if not ok:
                    progress.failed.append(entry.id)
                progress.seconds = time.perf_counter() - start
                self._save(progress)
                if progress.done % 50 == 0 or progress.done == progress.total:
                    log.info("Warm-up: %d/%d models analysed (%.1f s)", progress.done, progress.total, progress.seconds)
            failed = set(progress.failed)
            at_top1 = [(entry, side) for entry in entries if entry.id not in failed
                       and (side := top1_side(entry)) is not None
                       and not self.cache.path_for(entry, side).exists()]
            for _entry, ok in self._analyse(progress, at_top1):
                progress.analysed_now += ok
            if then is not None and not self._stop.is_set():
                progress.current = None
                self._save(progress)
                then()
        progress.current, progress.running = None, self._stop.is_set() and progress.done < progress.total
        progress.seconds = time.perf_counter() - start
        self._save(progress)
        return progress

    def _analyse(self, progress: WarmupProgress, jobs: list[tuple[ModelEntry, int | None]]
                 ) -> Iterator[tuple[ModelEntry, bool]]:
        """Each (entry, side) analysed in the pool, ``pool.processes`` in flight,
        yielded as it finishes with whether it succeeded; stops handing out
        work once ``stop`` is called."""
        pending: dict[Future, ModelEntry] = {}
        queue = iter(jobs)
        while True:
            while len(pending) < self.cache.pool.processes and not self._stop.is_set():
                job = next(queue, None)
                if job is None:
                    break
                entry, side = job
                pending[self.cache.pool.submit(entry.id, side, self.cache.path_for(entry, side),
                                               return_data=False)] = entry
                progress.current = entry.id if side is None else f"{entry.id} at {side}×{side}"
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                entry = pending.pop(future)
                try:
                    future.result()
                except Exception as exc:  # one broken model must not stop the warm-up
                    log.warning("Warm-up: analysis of %s failed: %s", entry.id, exc)
                    yield entry, False
                else:
                    yield entry, True


def top1_side(entry: ModelEntry) -> int | None:
    """The side a timm entry's top-1 was measured at, where it differs from
    its own input size and the analysis allows it; else None."""
    side = entry.timm.top1_resolution if entry.timm is not None else None
    if side is None or side > MAX_RESOLUTION or [side, side] == list(entry.input_size[1:]):
        return None
    return side
