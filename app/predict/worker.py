"""The inference worker: its threads do all model work, off the event loop.

Requests are decoded and preprocessed in a small thread pool, then queued here
(bounded: a full queue answers 503 busy at once instead of piling up). Each of
``inference_threads`` threads takes the oldest job and whatever else is
already queued, up to max_batch_size, and runs them as one batch per model.
Where forwards run one at a time (eager PyTorch, a GPU: models/predictor.py),
a thread waits up to max_batch_wait_ms for more, only while other requests
are still being preprocessed and no other inference thread is free to take
them, so a lone client never waits for company and concurrent clients share
forward passes. ONNX Runtime on the CPU runs batches side by side instead
(``inference_threads``, 2 by default; all but a lone one on a one-thread
session: models/onnx_runtime.py's OrtModel) and never waits: a caller that
loses its core to preprocessing stalls only its own batch (README,
Predictions: +5% served with 8 clients, measured A/B). Loaded models
(models/predictor.py's Predictor) live in a bounded LRU, filled by
app/predict/preparation.py's thread (a first load may export to ONNX for a
minute; the worker keeps serving the others).

Interface (stable; other features and serving modes rely on it):
- ``InferenceWorker(device, max_batch_size=, max_batch_wait_ms=, max_queue=,
  loaded_models=, torch_threads=, runtime=, export_dir=, tolerance=, inference_threads=)``
- ``start(preload)`` / ``stop()``: reference-counted lifecycle; ``preload`` is prepared in the background.
- ``await ensure_ready(entry) -> ms waited``: loads the model if need be; ``preparing``: what is being loaded.
- ``await predict(entry, prepare, topk) -> (Inference, preprocess_ms)``:
  ``prepare()`` returns the model's input tensor (``input_shape``, float32); raises Busy when
  the queue is full, WeightsError when the weights are missing.
- ``runtimes``: model id -> RuntimeChoice for every model loaded so far.
- counters: ``queued``, ``preprocessing``, ``max_queue``, ``running``, ``batch_sizes``, ``inference_threads``,
  ``models.ids``, ``models.peak_concurrent_forwards``.
- ``run_batch(predictor, [(tensor, topk), ...]) -> [Inference, ...]``: one
  forward pass, for any serving mode that holds a Predictor.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from app.errors import Busy
from app.predict.preparation import Preparation, Preparer
from models.catalog import ModelEntry
from models.predictor import Predictor, RuntimeChoice

@dataclass
class Job:
    entry: ModelEntry
    tensor: torch.Tensor
    topk: int
    future: Future


@dataclass(frozen=True)
class Inference:
    indices: list[int]
    probabilities: list[float]
    labels: list[str]
    inference_ms: float  # the forward pass of the whole batch this image was in
    batch_size: int
    runtime: str  # "onnxruntime" | "torch"


class ModelCache:
    """A bounded LRU of Predictors, on the worker's device and runtime. Also
    remembers each loaded model's runtime after it leaves the LRU."""

    def __init__(self, capacity: int, device: torch.device, runtime: str = "auto", export_dir: Path | None = None,
                 threads: int = 0, tolerance: float | None = None, concurrent: bool = False) -> None:
        self.capacity = max(1, capacity)
        self.device = device
        self.runtime_setting = runtime
        self.export_dir = export_dir
        self._load_options = dict(runtime=runtime, export_dir=export_dir, threads=threads, tolerance=tolerance,
                                  concurrent=concurrent)
        self._models: OrderedDict[str, Predictor] = OrderedDict()
        self._runtimes: dict[str, RuntimeChoice] = {}
        self._lock = threading.Lock()  # status readers on other threads

    def has(self, model_id: str) -> bool:
        return self.loaded(model_id) is not None

    def loaded(self, model_id: str) -> Predictor | None:
        """The model if it is loaded, without counting as a use."""
        with self._lock:
            return self._models.get(model_id)

    def get(self, entry: ModelEntry, on_stage: Callable[[str], None] | None = None) -> Predictor:
        """The loaded model, loading it first if need be (``on_stage``: each stage's description)."""
        with self._lock:
            if entry.id in self._models:
                self._models.move_to_end(entry.id)
                return self._models[entry.id]
        loaded = Predictor.load(entry, self.device, on_stage=on_stage, **self._load_options)
        with self._lock:
            self._models[entry.id] = loaded
            self._runtimes[entry.id] = RuntimeChoice(loaded.runtime, loaded.runtime_reason)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return loaded

    @property
    def ids(self) -> list[str]:
        with self._lock:
            return list(self._models)

    @property
    def runtimes(self) -> dict[str, RuntimeChoice]:
        with self._lock:
            return dict(self._runtimes)

    @property
    def peak_concurrent_forwards(self) -> dict[str, int]:
        """Loaded model id -> the most forwards of it that have run at once."""
        with self._lock:
            return {model_id: predictor.peak_concurrent_forwards for model_id, predictor in self._models.items()}


class InferenceWorker:
    mode = "embedded"  # beside app/predict/ray_serve.py's RayInference

    def __init__(self, device: torch.device, *, max_batch_size: int, max_batch_wait_ms: float, max_queue: int,
                 loaded_models: int, torch_threads: int = 0, runtime: str = "auto", export_dir: Path | None = None,
                 tolerance: float | None = None, inference_threads: int = 2) -> None:
        self.device = device
        self.inference_threads = max(1, inference_threads)
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_wait_s = max_batch_wait_ms / 1000
        self.torch_threads = torch_threads
        self.models = ModelCache(loaded_models, device, runtime, export_dir, torch_threads, tolerance,
                                 concurrent=self.inference_threads > 1)
        self.preparer = Preparer(self.models)
        # The queue and the counters the inference threads decide on, under one lock; ``_changed`` is
        # notified when a job is queued, a thread falls free, or the worker stops. (queue.Queue would
        # not wake a thread waiting for company when another thread falls free.)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._jobs: deque[Job] = deque()
        self._max_queue = max(1, max_queue)
        self._stopping = False
        self._incoming = 0  # admitted requests still preprocessing, not queued yet
        self._waiting_for_load = 0  # requests waiting for a model's first load (each holds its upload)
        # Decoding in more threads than cores is no faster and starves the forward pass.
        self._preprocessors = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="convzoo-preprocess")
        self._threads: list[threading.Thread] = []
        self._free_threads = 0  # inference threads waiting for a first job
        self._users = 0
        self.batch_sizes: Counter[int] = Counter()

    # -- lifecycle ---------------------------------------------------------

    def start(self, preload: list[ModelEntry] = ()) -> None:
        """Start the threads (reference-counted: a TestClient and a live server
        may run the same app's lifespan), loading ``preload`` first."""
        with self._lock:
            self._users += 1
            if self._threads:
                return
            self._stopping = False
            self._threads = [threading.Thread(target=self._run, name=f"convzoo-inference-{n}", daemon=True)
                             for n in range(self.inference_threads)]
        for thread in self._threads:
            thread.start()
        for entry in preload:  # in the background: the worker serves meanwhile
            self.preparer.prepare(entry)

    def stop(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users > 0 or not self._threads:
                return
            threads, self._threads = self._threads, []
            self._stopping = True  # the threads finish what is queued, then end
            self._changed.notify_all()
        for thread in threads:
            thread.join(timeout=30)
        self.preparer.stop()

    # -- the request side (event loop) ------------------------------------

    async def ensure_ready(self, entry: ModelEntry) -> float:
        """Wait until ``entry`` is loaded (app/predict/preparation.py), and
        return the ms waited: 0 when it was. Raises what loading raised, and Busy
        when ``max_queue`` requests already wait for the load."""
        pending = self.preparer.prepare(entry)
        if pending is None:
            return 0.0
        with self._lock:  # as many may wait for a load as may wait in the queue; the rest are told to come back
            if self._waiting_for_load >= self._max_queue:
                raise Busy(f"{entry.id} is being loaded and {self._waiting_for_load} requests already wait for it; "
                           "try again in a few seconds.", retry_after_s=5)
            self._waiting_for_load += 1
        started = time.perf_counter()
        try:
            # shield: a client that leaves must not cancel a preparation others wait on
            await asyncio.shield(asyncio.wrap_future(pending))
        finally:
            with self._lock:
                self._waiting_for_load -= 1
        return (time.perf_counter() - started) * 1000

    async def predict(self, entry: ModelEntry, prepare: Callable[[], torch.Tensor],
                      topk: int) -> tuple[Inference, float]:
        """Preprocess in a pool of one thread per core (``prepare`` decodes and transforms),
        queue, and await the batch's result; also returns preprocessing ms.
        Refused with Busy at once when the queue is full.

        The pool thread queues the job itself, so the event loop wakes once per
        request (for the answer), not also between preprocessing and queueing."""
        self._admit()
        answer: Future = Future()
        preprocess_ms = 0.0

        def prepare_and_queue() -> None:
            nonlocal preprocess_ms
            try:
                started = time.perf_counter()
                tensor = prepare()
                preprocess_ms = (time.perf_counter() - started) * 1000
            except BaseException as exc:  # a bad image ...: this request's error
                self._drop_incoming()
                _fail(answer, exc)
                return
            with self._lock:  # queued and no longer incoming in one step: the worker never waits for it
                self._incoming -= 1
                self._jobs.append(Job(entry, tensor, topk, answer))  # its place was kept at admission
                self._changed.notify()

        self._preprocessors.submit(prepare_and_queue)
        return await asyncio.wrap_future(answer), preprocess_ms

    def _admit(self) -> None:
        """Count a request in, or refuse it with Busy. Admitted and not yet running (being
        decoded, or queued) count alike: an image that is slow to decode (a 7000x7000 PNG
        of 143 KB: seconds) holds its place, so the queue never outgrows max_queue. In one
        step under the lock: the app may be served by more than one event loop (tests)."""
        with self._lock:
            if len(self._jobs) + self._incoming >= self._max_queue:
                raise self._busy()
            self._incoming += 1  # the worker may wait a little for this one

    def _drop_incoming(self) -> None:
        """A request failed in preprocessing: it leaves the queue, and nobody waits for its company."""
        with self._lock:
            self._incoming -= 1
            self._changed.notify_all()

    def _busy(self) -> Busy:
        return Busy(f"The inference queue is full ({self._max_queue} requests being decoded or waiting); "
                    "try again in a second.", retry_after_s=1)

    # -- statistics ---------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._jobs)

    @property
    def preprocessing(self) -> int:
        """Admitted requests being decoded and preprocessed (not queued yet)."""
        return self._incoming

    @property
    def max_queue(self) -> int:
        return self._max_queue

    @property
    def running(self) -> bool:
        return bool(self._threads)

    @property
    def runtime_setting(self) -> str:
        return self.models.runtime_setting

    @property
    def runtimes(self) -> dict[str, RuntimeChoice]:
        """Model id -> the runtime it was loaded on and why, for every model loaded so far."""
        return self.models.runtimes

    @property
    def waiting_for_load(self) -> int:
        """Requests waiting for a model's first load (at most ``max_queue``)."""
        return self._waiting_for_load

    @property
    def preparing(self) -> dict[str, Preparation]:
        """Model id -> its preparation under way (stage, seconds)."""
        return self.preparer.status()

    # -- the worker thread -------------------------------------------------

    def _run(self) -> None:
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        while True:
            batch, share_cores = self._next_batch()
            if not batch:
                return
            for group in _by_model(batch):
                self._run_batch(group, share_cores)

    def _next_batch(self) -> tuple[list[Job], bool]:
        """The oldest job plus what is queued, up to max_batch_size; empty once
        the worker stops with nothing queued. Waits for company (at most
        max_batch_wait_ms) only where forwards run one at a time (not ONNX
        Runtime on the CPU: models/predictor.py), while more admitted requests
        are still preprocessing and every other inference thread is busy: a
        free one would take them at once, and one falling free ends the wait.
        Also says whether other work waits or runs beside this batch: then it
        shares the cores (Predictor.classify)."""
        with self._changed:
            self._free_threads += 1
            self._changed.notify_all()  # a thread waiting for company runs what it has
            while not self._jobs and not self._stopping:
                self._changed.wait()
            self._free_threads -= 1
            if not self._jobs:
                return [], False  # stopping
            batch = [self._jobs.popleft()]
            predictor = self.models.loaded(batch[0].entry.id)
            wait_s = 0.0 if predictor is not None and predictor.concurrent_runs else self.max_batch_wait_s
            deadline = time.monotonic() + wait_s
            while len(batch) < self.max_batch_size:
                if self._jobs:
                    batch.append(self._jobs.popleft())
                    continue
                remaining = deadline - time.monotonic()
                if self._incoming <= 0 or self._free_threads > 0 or self._stopping or remaining <= 0:
                    break
                self._changed.wait(remaining)
            others_busy = self.inference_threads - self._free_threads - 1
            return batch, bool(self._jobs) or self._incoming > 0 or others_busy > 0

    def _run_batch(self, jobs: list[Job], share_cores: bool) -> None:
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        try:
            results = run_batch(self.models.get(jobs[0].entry), [(job.tensor, job.topk) for job in jobs],
                                share_cores)
        except Exception as exc:  # a model that fails to load or run fails its requests, not the worker
            for job in jobs:
                job.future.set_exception(exc)
            return
        with self._lock:  # two threads may finish at once
            self.batch_sizes[len(jobs)] += 1
        for job, result in zip(jobs, results):
            job.future.set_result(result)


def run_batch(predictor: Predictor, requests: list[tuple[torch.Tensor, int]],
              share_cores: bool = False) -> list[Inference]:
    """One forward pass over preprocessed images of one model, each with its
    own top-k (its input tensor, k), on the predictor's runtime
    (``share_cores``: Predictor.classify's). What any serving mode (this
    worker, a process pool, a Ray Serve deployment) calls, so all answer alike."""
    started = time.perf_counter()
    inputs = requests[0][0][None] if len(requests) == 1 else torch.stack([tensor for tensor, _ in requests])
    values, indices = predictor.classify(inputs, max(k for _, k in requests), share_cores)
    elapsed_ms = (time.perf_counter() - started) * 1000
    results = []
    for row, (_, k) in enumerate(requests):
        idx = indices[row, :k].tolist()
        results.append(Inference(indices=idx, probabilities=values[row, :k].tolist(),
                                 labels=[predictor.categories[i] for i in idx], inference_ms=elapsed_ms,
                                 batch_size=len(requests), runtime=predictor.runtime))
    return results


def _fail(future: Future, exc: BaseException) -> None:
    """Fail a request's future unless its client has gone (cancelled)."""
    if future.set_running_or_notify_cancel():
        future.set_exception(exc)


def _by_model(batch: list[Job]) -> list[list[Job]]:
    groups: dict[str, list[Job]] = {}
    for job in batch:
        groups.setdefault(job.entry.id, []).append(job)
    return list(groups.values())
