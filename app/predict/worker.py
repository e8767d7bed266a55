"""The inference worker: one thread does all model work, off the event loop.

Requests are decoded and preprocessed in a small thread pool, then queued here
(bounded: a full queue answers 503 busy at once instead of piling up). The
worker takes the oldest job and whatever else is already queued, up to
max_batch_size, and runs them as one batch per model. It waits up to
max_batch_wait_ms for more only while other requests are still being
preprocessed, so a lone client never waits for company and concurrent
clients share forward passes. Loaded models live in a bounded LRU that only
the worker thread touches.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import nn

from app.errors import Busy
from models.catalog import ModelEntry
from models.preprocess import preprocessing_for
from models.weights import categories, load_pretrained

_STOP = object()
logger = logging.getLogger("convzoo.inference")


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


@dataclass(frozen=True)
class LoadedModel:
    module: nn.Module
    categories: list[str]


class ModelCache:
    """A bounded LRU of models with their weights, on the worker's device."""

    def __init__(self, capacity: int, device: torch.device) -> None:
        self.capacity = max(1, capacity)
        self.device = device
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()  # status readers on other threads

    def get(self, entry: ModelEntry) -> LoadedModel:
        with self._lock:
            if entry.id in self._models:
                self._models.move_to_end(entry.id)
                return self._models[entry.id]
        # channels_last: oneDNN's depthwise and 1x1 convolutions run 1.5-2x faster in it on CPU
        module = load_pretrained(entry, self.device).to(memory_format=torch.channels_last)
        loaded = LoadedModel(module, categories(entry))
        with self._lock:
            self._models[entry.id] = loaded
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return loaded

    @property
    def ids(self) -> list[str]:
        with self._lock:
            return list(self._models)


class InferenceWorker:
    mode = "embedded"  # beside app/predict/ray_serve.py's RayInference

    def __init__(self, device: torch.device, *, max_batch_size: int, max_batch_wait_ms: float, max_queue: int,
                 loaded_models: int, torch_threads: int = 0) -> None:
        self.device = device
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_wait_s = max_batch_wait_ms / 1000
        self.torch_threads = torch_threads
        self.models = ModelCache(loaded_models, device)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, max_queue))
        self._incoming = 0  # admitted requests still preprocessing, not queued yet
        # Decoding in more threads than cores is no faster and starves the forward pass.
        self._preprocessors = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="convzoo-preprocess")
        self._thread: threading.Thread | None = None
        self._users = 0
        self._lock = threading.Lock()
        self.batch_sizes: Counter[int] = Counter()

    # -- lifecycle ---------------------------------------------------------

    def start(self, preload: list[ModelEntry] = ()) -> None:
        """Start the thread (reference-counted: a TestClient and a live server
        may run the same app's lifespan), loading ``preload`` first."""
        with self._lock:
            self._users += 1
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, args=(list(preload),), name="convzoo-inference",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users > 0 or self._thread is None:
                return
            thread, self._thread = self._thread, None
        self._queue.put(_STOP)
        thread.join(timeout=30)

    # -- the request side (event loop) ------------------------------------

    async def predict(self, entry: ModelEntry, prepare: Callable[[], torch.Tensor],
                      topk: int) -> tuple[Inference, float]:
        """Preprocess in a pool of one thread per core (``prepare`` decodes and transforms),
        queue, and await the batch's result; also returns preprocessing ms.
        Refused with Busy at once when the queue is full."""
        self._refuse_if_full()
        self._count_incoming(+1)  # the worker may wait a little for this one
        try:
            started = time.perf_counter()
            tensor = await asyncio.wrap_future(self._preprocessors.submit(prepare))
            preprocess_ms = (time.perf_counter() - started) * 1000
            job = Job(entry, tensor, topk, Future())
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self._refuse_if_full(force=True)
        finally:
            self._count_incoming(-1)
        return await asyncio.wrap_future(job.future), preprocess_ms

    def _count_incoming(self, delta: int) -> None:
        with self._lock:  # the app may be served by more than one event loop (tests)
            self._incoming += delta

    def _refuse_if_full(self, force: bool = False) -> None:
        if force or self._queue.full():
            raise Busy(f"The inference queue is full ({self._queue.maxsize} waiting); try again in a second.",
                       retry_after_s=1)

    # -- statistics ---------------------------------------------------------

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def max_queue(self) -> int:
        return self._queue.maxsize

    @property
    def running(self) -> bool:
        return self._thread is not None

    # -- the worker thread -------------------------------------------------

    def _run(self, preload: list[ModelEntry]) -> None:
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        for entry in preload:
            try:
                self._warm_up(entry)
            except Exception:  # its requests will get the error; the worker must live on
                logger.exception("Could not preload %s", entry.id)
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            for group in _by_model(batch):
                self._run_batch(group)
            if stop:
                return

    def _warm_up(self, entry: ModelEntry) -> None:
        """Load a model and run one throwaway forward: the first pass pays for
        allocations and kernel selection, and no request should."""
        crop = preprocessing_for(entry).crop
        with torch.inference_mode():
            self.models.get(entry).module(
                torch.zeros(1, 3, crop, crop, device=self.device).contiguous(memory_format=torch.channels_last))

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        """The first job plus what is queued, waiting briefly only while more
        admitted requests are still preprocessing."""
        batch = [first]
        deadline = time.monotonic() + self.max_batch_wait_s
        while len(batch) < self.max_batch_size:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if self._incoming <= 0 or remaining <= 0:
                    break
                try:
                    job = self._queue.get(timeout=min(remaining, 0.002))
                except queue.Empty:
                    continue
            if job is _STOP:
                return batch, True
            batch.append(job)
        return batch, False

    def _run_batch(self, jobs: list[Job]) -> None:
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        try:
            results = run_batch(self.models.get(jobs[0].entry), [(job.tensor, job.topk) for job in jobs],
                                self.device)
        except Exception as exc:  # a model that fails to load or run fails its requests, not the worker
            for job in jobs:
                job.future.set_exception(exc)
            return
        self.batch_sizes[len(jobs)] += 1
        for job, result in zip(jobs, results):
            job.future.set_result(result)


def run_batch(loaded: LoadedModel, requests: list[tuple[torch.Tensor, int]], device: torch.device) -> list[Inference]:
    """One forward pass over preprocessed images of one model, each with its
    own top-k (tensor [3, H, W], k). Shared by the embedded worker and the Ray
    Serve deployment (app/predict/ray_serve.py), so both answer alike."""
    started = time.perf_counter()
    with torch.inference_mode():
        inputs = torch.stack([tensor for tensor, _ in requests]).to(
            device, memory_format=torch.channels_last, non_blocking=True)
        probabilities = loaded.module(inputs).float().softmax(dim=-1)
        top = probabilities.topk(max(k for _, k in requests), dim=-1)
        values, indices = top.values.cpu(), top.indices.cpu()  # waits for the device
    elapsed_ms = (time.perf_counter() - started) * 1000
    results = []
    for row, (_, k) in enumerate(requests):
        idx = indices[row, :k].tolist()
        results.append(Inference(indices=idx, probabilities=values[row, :k].tolist(),
                                 labels=[loaded.categories[i] for i in idx], inference_ms=elapsed_ms,
                                 batch_size=len(requests)))
    return results


def _by_model(batch: list[Job]) -> list[list[Job]]:
    groups: dict[str, list[Job]] = {}
    for job in batch:
        groups.setdefault(job.entry.id, []).append(job)
    return list(groups.values())
