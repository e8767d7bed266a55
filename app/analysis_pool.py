"""Cold analyses in worker processes, off the request path.

Tracing a model is CPU-bound Python: in a web worker's thread it holds the GIL
against every other request (measured under bench/load.py's 16 clients: cold
layer analyses at a p95 of 7 s, and the pages around them waiting). Here it
runs in a ``concurrent.futures.ProcessPoolExecutor`` instead, shared by the
requests that find no cached analysis and by the start-up warm-up. The worker
processes run at a lower scheduling priority (``os.nice``), so the web tier's
short requests get the cores first, and with one torch thread each (a meta
trace does no arithmetic). Each worker writes the cache file itself,
atomically, and hands the analysis back as a plain dict.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from app.state_store import write_atomically

logger = logging.getLogger("convzoo")

# Niceness added to analysis processes: requests served by the web workers come first.
ANALYSIS_NICENESS = 5


def default_processes() -> int:
    return max(1, os.cpu_count() or 1)


def _exit_with_parent(parent: int) -> None:
    """A pool process whose web worker is gone (killed, or stopped while this
    process was still starting) would wait on its task queue forever, holding
    its memory (most of a GB with timm's models imported): end it."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _init_process(parent: int) -> None:
    """``parent``: the web worker's pid, as it gave it (os.getppid() here would read 1,
    init's, for a process started while its parent was dying: it would never exit)."""
    os.nice(ANALYSIS_NICENESS)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="convzoo-parent-watch",
                     daemon=True).start()
    import torch

    torch.set_num_threads(1)
    from models.registry import list_models

    list_models()  # the catalog (and timm) imported before the first task, not during it
    # What is imported lives as long as the process: out of the collector's sight, so a
    # full collection walks only what an analysis allocates.
    gc.freeze()


def analyse_to_file(model_id: str, resolution: int | None, path: str, return_data: bool = True) -> dict | None:
    """In a pool process: analyse catalog entry ``model_id`` (models.analysis),
    write the cache file at ``path``, return the analysis as a dict (or None
    when the caller only needs it on disk, as the warm-up does).
    Raises models.analysis.AnalysisError as analyse_entry does."""
    from models.analysis import analyse_entry
    from models.meta import no_gc
    from models.registry import get_entry

    analysis = analyse_entry(get_entry(model_id), resolution)
    with no_gc():  # thousands of small dicts; a collection in the middle costs more than the rest
        data = analysis.to_dict()
        write_atomically(Path(path), json.dumps(data, separators=(",", ":")))
    return data if return_data else None


class AnalysisPool:
    """A process pool started on first use (spawned, not forked: the web
    worker has threads, and torch is not fork-safe), restarted if a worker
    process dies (e.g. killed for memory) instead of failing every later call.
    The job a dying process held runs once more in the fresh pool; if that
    process dies too, the job fails with AnalysisCrashed (a 500 that says so)."""

    def __init__(self, processes: int = 0) -> None:
        self.processes = processes or default_processes()
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, model_id: str, resolution: int | None, path: Path, return_data: bool = True) -> Future:
        return self.call(analyse_to_file, model_id, resolution, str(path), return_data)

    def call(self, function: Callable[..., Any], *args: Any) -> Future:
        """Run ``function(*args)`` in a pool process: other CPU-bound work on
        models (a model's input rule, its re-parameterised form). ``function``
        must be module-level, so a spawned process can import it. Raises
        RuntimeError once the pool is shut down."""
        answer: Future = Future()
        self._run(function, args, answer, retries=1)
        return answer

    def _run(self, function: Callable[..., Any], args: tuple, answer: Future, retries: int) -> None:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_init_process, initargs=(os.getpid(),))
            executor = self._executor
        try:
            pooled = executor.submit(function, *args)
        except BrokenProcessPool:  # broken by an earlier job: not this one's doing
            self._discard(executor)
            self._run(function, args, answer, retries)
            return

        def done(finished: Future) -> None:
            if finished.cancelled():  # the pool shut down (cancel_futures)
                answer.cancel()
                return
            error = finished.exception()
            if isinstance(error, BrokenProcessPool):
                self._discard(executor)
                logger.warning("A pool process died running %s%r (%d retries left)", function.__name__, args, retries)
                if retries:
                    try:
                        self._run(function, args, answer, retries - 1)
                    except RuntimeError as exc:  # shut down meanwhile
                        answer.set_exception(exc)
                    return
                from app.errors import AnalysisCrashed  # here: pool processes import this module, not FastAPI

                error = AnalysisCrashed("The process working on this died twice (most likely killed for memory: "
                                        "at this size the model may need more than this server has); "
                                        "the server keeps serving.")
            answer.set_exception(error) if error is not None else answer.set_result(finished.result())

        pooled.add_done_callback(done)

    def analyse(self, model_id: str, resolution: int | None, path: Path) -> dict[str, Any]:
        """Analyse in the pool and wait (see ``call``)."""
        return self.submit(model_id, resolution, path).result()

    def _discard(self, executor: ProcessPoolExecutor | None) -> None:
        with self._lock:
            if executor is None or self._executor is executor:
                broken, self._executor = self._executor, None
            else:
                return
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Cancel what waits and return at once (app shutdown): a process still
        starting (importing torch takes seconds) or tracing finishes that and
        exits by itself; its cache file, if any, is written whole or not at all."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
