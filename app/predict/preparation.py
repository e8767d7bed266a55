"""Getting a model ready to predict, off the inference worker's thread.

A model's first load can take a minute: ONNX Runtime's export and its
verification against eager PyTorch (EfficientNet-Lite1/Lite2: 55-71 s on 2
busy cores). That runs here, in a thread of its own, one model at a time
(torch.export keeps global state: models/onnx_runtime.py), so the worker keeps
answering for the models already loaded, and every request for the model
being prepared waits on the same preparation. ``status()`` says which model
is being prepared, at which stage and for how long, for
/api/predict/worker, /api/predict/models and the /predict page's progress.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from models.catalog import ModelEntry

WAITING = "waiting while another model is prepared"
_STOP = object()  # on a thread's queue: end after the load in hand
logger = logging.getLogger("convzoo.inference")


@dataclass
class Preparation:
    model: str
    stage: str
    queued: float = field(default_factory=time.monotonic)
    started: float | None = None  # time.monotonic() when its loading began
    future: Future = field(default_factory=Future)

    def seconds(self) -> float:
        return time.monotonic() - (self.started or self.queued)


class Preparer:
    """Loads models into a ModelCache (app/predict/worker.py) in one thread,
    reporting each stage, and runs one throwaway forward so that no request
    pays for allocations either."""

    def __init__(self, models) -> None:
        self.models = models
        # A daemon thread (not an executor's, which the interpreter joins at exit without a
        # limit): a server stopping mid-export waits for it at most stop()'s timeout.
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._active: dict[str, Preparation] = {}

    def prepare(self, entry: ModelEntry) -> Future | None:
        """None when ``entry`` is loaded; else the future of its preparation
        (started now, or the one already under way). The future raises what
        loading raised (WeightsError ...)."""
        if self.models.has(entry.id):
            return None
        with self._lock:
            if (active := self._active.get(entry.id)) is not None:
                return active.future
            preparation = self._active[entry.id] = Preparation(entry.id, WAITING)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name="convzoo-prepare",
                                                daemon=True)
                self._thread.start()
            self._queue.put((entry, preparation))
        return preparation.future

    def stop(self, timeout_s: float = 30) -> None:
        """End the thread after the load in hand (waiting at most ``timeout_s``
        for it): a load left running past its app's shutdown (an ONNX export,
        seconds) would share torch's process-wide tracing state with whatever
        the process does next. Preparations still queued fail."""
        with self._lock:  # a later prepare() starts a thread of its own, on a queue of its own
            thread, self._thread = self._thread, None
            jobs, self._queue = self._queue, queue.SimpleQueue()
        if thread is None:
            return
        jobs.put(_STOP)
        thread.join(timeout=timeout_s)

    def _run(self, jobs: queue.SimpleQueue) -> None:
        while (job := jobs.get()) is not _STOP:
            self._load(*job)
        while not jobs.empty():  # queued behind the stop: never loaded
            entry, preparation = jobs.get()
            self._fail(entry, preparation, RuntimeError("The server is stopping; the model was not loaded."))

    def _load(self, entry: ModelEntry, preparation: Preparation) -> None:
        preparation.started = time.monotonic()

        def stage(text: str) -> None:
            preparation.stage = text

        try:
            predictor = self.models.get(entry, on_stage=stage)
            stage("a first forward pass (memory, kernel choice)")
            predictor.warm_up()
        except BaseException as exc:  # the requests waiting get it; the thread lives on
            logger.warning("Could not prepare %s: %s", entry.id, exc)
            self._fail(entry, preparation, exc)
        else:
            with self._lock:
                del self._active[entry.id]
            preparation.future.set_result(None)

    def _fail(self, entry: ModelEntry, preparation: Preparation, exc: BaseException) -> None:
        with self._lock:
            del self._active[entry.id]
        preparation.future.set_exception(exc)

    def status(self) -> dict[str, Preparation]:
        """Model id -> its preparation, for the models being prepared or waiting to be."""
        with self._lock:
            return dict(self._active)
