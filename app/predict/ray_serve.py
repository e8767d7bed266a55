"""Predictions served by Ray Serve: the optional mode for when one machine is
not enough (``convzoo serve --ray``, extra ``[ray]``).

The predictor is a Ray Serve deployment with its own replicas (on this machine
or across a Ray cluster) and Ray's batching (``@serve.batch``) in place of the
embedded worker's queue; the web tier decodes and preprocesses as always, then
sends the tensor to the deployment through a handle. A batch runs through the
embedded worker's own ``run_batch`` and ``ModelCache`` (the same runtime
choice, ONNX Runtime or torch), so both modes answer the same. Ray rather than a home-made distribution layer: it schedules the
replicas, restarts them, balances requests across them and scales them.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from app.errors import Busy
from app.predict.worker import Inference, ModelCache, run_batch
from models.catalog import ModelEntry
from models.registry import get_entry

ROOT = Path(__file__).resolve().parents[2]
APP_NAME = "convzoo"
DEPLOYMENT_NAME = "Predictor"
NAMESPACE = "convzoo"


def predictor_deployment():
    """The deployment class (built on first use: ray is an optional extra)."""
    from ray import serve

    @serve.deployment(name=DEPLOYMENT_NAME)
    class Predictor:
        """One replica: an LRU of models with weights, and batches formed by Ray."""

        def __init__(self, device: str, loaded_models: int, torch_threads: int, max_batch_size: int,
                     max_batch_wait_ms: float, runtime: str, export_dir: str, tolerance: float | None) -> None:
            if torch_threads:
                torch.set_num_threads(torch_threads)
            self.device = torch.device(device)
            self.models = ModelCache(loaded_models, self.device, runtime, Path(export_dir), torch_threads, tolerance)
            self.replica = serve.get_replica_context().replica_id.unique_id
            self.batches = 0
            self.predict_batch.set_max_batch_size(max_batch_size)
            self.predict_batch.set_batch_wait_timeout_s(max_batch_wait_ms / 1000)

        @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
        async def predict_batch(self, requests: list[tuple[str, torch.Tensor, int]]) -> list:
            """Ray hands over what arrived together; one forward per model in it.
            A model that fails (no weights) fails its own requests only."""
            self.batches += 1
            batch = f"{self.replica}:{self.batches}"
            answers: list = [None] * len(requests)
            groups: dict[str, list[int]] = {}
            for index, (model_id, _, _) in enumerate(requests):
                groups.setdefault(model_id, []).append(index)
            for model_id, rows in groups.items():
                try:
                    results = run_batch(self.models.get(get_entry(model_id)), [requests[i][1:] for i in rows])
                except Exception as exc:
                    results = [exc] * len(rows)
                for index, result in zip(rows, results):
                    answers[index] = (result, self.replica, batch)
            return answers

        async def predict(self, model_id: str, tensor: torch.Tensor, topk: int) -> tuple[Inference, str, str]:
            """(the answer, the replica that gave it, the batch it was in)."""
            result, replica, batch = await self.predict_batch((model_id, tensor, topk))
            if isinstance(result, Exception):
                raise result
            return result, replica, batch

    return Predictor


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` ("auto": the one this machine runs),
    or start a local one when None; idempotent within a process."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, namespace=NAMESPACE, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)


def deploy(settings, replicas: int, cpus_per_replica: float) -> None:
    """Start Serve without its HTTP proxy (the web tier calls the deployment
    through a handle) and run the predictor with ``replicas`` replicas."""
    from ray import serve

    connect(settings.ray_address)
    serve.start(proxy_location="Disabled")
    device = "cuda:0" if settings.device == "auto" and torch.cuda.is_available() else (
        "cpu" if settings.device == "auto" else settings.device)
    # Replicas import the app's modules: from the installed package on a cluster's
    # nodes, or from this checkout when Ray runs here.
    runtime_env = {"env_vars": {"PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}}
    options = {"num_cpus": cpus_per_replica, "runtime_env": runtime_env}
    serve.run(predictor_deployment().options(num_replicas=replicas, ray_actor_options=options).bind(
        device, settings.loaded_models, settings.torch_threads, settings.max_batch_size, settings.max_batch_wait_ms,
        settings.runtime, str(settings.cache_dir / "onnx"), settings.onnx_tolerance),
        name=APP_NAME, route_prefix=None)


class RayInference:
    """The web tier's side: the same face as the embedded InferenceWorker for
    the routes (``predict``, ``start``/``stop``, the status counters).
    Requests in flight are bounded by ``max_queue`` (503 busy past it)."""

    mode = "ray"
    inference_threads = 1  # per replica; the replicas are the parallelism

    def __init__(self, device: torch.device, *, address: str | None, max_batch_size: int, max_batch_wait_ms: float,
                 max_queue: int) -> None:
        self.device = device
        self.address = address
        self.max_batch_size = max_batch_size
        self.max_batch_wait_s = max_batch_wait_ms / 1000
        self.max_queue = max(1, max_queue)
        self._preprocessors = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="convzoo-preprocess")
        self._handle = None
        self._in_flight = 0
        self._lock = threading.Lock()
        self.batch_sizes: Counter[int] = Counter()  # batch size -> how many batches of that size answered here
        self._seen_batches: OrderedDict[str, None] = OrderedDict()
        self.replicas: Counter[str] = Counter()  # replica id -> images it answered
        self.models = _NoModels()

    def start(self, preload: list[ModelEntry] = ()) -> None:
        from ray import serve

        connect(self.address)
        self._handle = serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=APP_NAME)

    def stop(self) -> None:
        self._handle = None

    @property
    def running(self) -> bool:
        return self._handle is not None

    @property
    def queued(self) -> int:
        return self._in_flight

    @property
    def preprocessing(self) -> int:  # counted in queued, which here is every request in flight
        return 0

    async def ensure_ready(self, entry: ModelEntry) -> float:
        """Replicas load their models themselves, in the request."""
        return 0.0

    @property
    def preparing(self) -> dict:
        return {}

    @property
    def waiting_for_load(self) -> int:  # nothing waits here: replicas load in the request
        return 0

    async def predict(self, entry: ModelEntry, prepare: Callable[[], torch.Tensor],
                      topk: int) -> tuple[Inference, float]:
        with self._lock:
            if self._in_flight >= self.max_queue:
                raise Busy(f"{self.max_queue} predictions are in flight; try again in a second.", retry_after_s=1)
            self._in_flight += 1
        try:
            started = time.perf_counter()
            tensor = await asyncio.wrap_future(self._preprocessors.submit(prepare))
            preprocess_ms = (time.perf_counter() - started) * 1000
            result, replica, batch = await self._handle.predict.remote(entry.id, tensor, topk)
        finally:
            with self._lock:
                self._in_flight -= 1
        with self._lock:
            if batch not in self._seen_batches:  # count each batch once, as the embedded worker does
                self._seen_batches[batch] = None
                self.batch_sizes[result.batch_size] += 1
                while len(self._seen_batches) > 4096:
                    self._seen_batches.popitem(last=False)
            self.replicas[replica] += 1
        return result, preprocess_ms


class _NoModels:
    """Loaded models live in the replicas, not here."""

    ids: list[str] = []
    peak_concurrent_forwards: dict[str, int] = {}

    def has(self, model_id: str) -> bool:
        return False
