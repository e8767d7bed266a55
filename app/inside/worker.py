"""The one thread that does this feature's model work, off the event loop.

Filters, feature maps and explanations need eager PyTorch modules with
gradients through them (the prediction worker serves forward passes only,
on ONNX Runtime where it can), so this feature loads its own copies through
models/weights.py, prepared for gradients (parameters frozen, no in-place
activations), in a small LRU that only this thread touches. One job runs at
a time (a Grad-CAM or an occlusion uses every core anyway); at most
``max_waiting`` more wait, and beyond that a request gets 503 busy at once.
Nothing a job computes outlives it: gradients are locals of one call.
Occlusion needs forward passes only (169 of them), so it runs them on the
prediction runtime (models/predictor.py: ONNX Runtime where it can, 4-6x
eager PyTorch for the depthwise nets on the CPU), loaded beside the eager module.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from app.errors import Busy
from models.catalog import ModelEntry
from models.explain import prepare_for_gradients
from models.predictor import Predictor
from models.weights import categories, load_pretrained

T = TypeVar("T")


@dataclass
class EagerModel:
    module: nn.Module
    categories: list[str]
    predictor: Predictor | None = None  # forward passes only, loaded on the first occlusion
    cam_layers: list[str] | None = None  # spatial leaf layers, found on the first Grad-CAM


class InsideWorker:
    def __init__(self, device: torch.device, loaded_models: int = 2, max_waiting: int = 4, runtime: str = "auto",
                 export_dir: Path | None = None, tolerance: float | None = None) -> None:
        self.device = device
        self._predictor_options = dict(runtime=runtime, export_dir=export_dir, tolerance=tolerance)
        self.capacity = max(1, loaded_models)
        self.max_waiting = max(0, max_waiting)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="convzoo-inside")
        self._models: OrderedDict[str, EagerModel] = OrderedDict()
        self._admitted = 0
        self._lock = threading.Lock()

    async def run(self, job: Callable[..., T], *args) -> T:
        """Run ``job(*args)`` on the worker thread and await its result;
        503 busy when one job runs and ``max_waiting`` already wait."""
        with self._lock:
            if self._admitted > self.max_waiting:
                raise Busy(f"{self._admitted} requests for filters, feature maps or explanations are already "
                           "running or waiting; try again in a few seconds.", retry_after_s=2)
            self._admitted += 1
        try:
            return await asyncio.wrap_future(self._executor.submit(job, *args))
        finally:
            with self._lock:
                self._admitted -= 1

    def model(self, entry: ModelEntry) -> EagerModel:
        """The model with its weights (raises models.weights.WeightsError).
        Worker thread only."""
        if entry.id in self._models:
            self._models.move_to_end(entry.id)
            return self._models[entry.id]
        module = prepare_for_gradients(load_pretrained(entry, self.device))
        if self.device.type == "cpu":  # oneDNN's depthwise and 1x1 convolutions are 1.5-2x faster so
            module = module.to(memory_format=torch.channels_last)
        loaded = EagerModel(module, categories(entry))
        self._models[entry.id] = loaded
        while len(self._models) > self.capacity:
            self._models.popitem(last=False)
        return loaded

    def predictor(self, entry: ModelEntry) -> Predictor:
        """The model on the prediction runtime, for forward-only work (raises
        models.weights.WeightsError). Worker thread only."""
        loaded = self.model(entry)
        if loaded.predictor is None:
            loaded.predictor = Predictor.load(entry, self.device, **self._predictor_options)
        return loaded.predictor
