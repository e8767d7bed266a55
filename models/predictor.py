"""A model with its trained weights, ready to classify batches on the runtime
chosen for it: ONNX Runtime (exported and verified by models/onnx_runtime.py)
or eager PyTorch. The inference worker keeps these in its LRU; anything that
serves predictions (the embedded worker, a process pool, a Ray Serve
deployment) can build one with ``Predictor.load`` and call ``classify``.

Runtime setting (CONVZOO_RUNTIME):
- ``auto``: ONNX Runtime on the CPU (measured here 4-6x eager PyTorch for the
  depthwise nets, 2x for ResNet-50: bench/results/speed_runtimes.json);
  PyTorch on CUDA (ORT's CUDA provider was not measured here: no GPU).
- ``onnxruntime``: ORT on either (CUDA needs onnxruntime-gpu).
- ``torch``: eager PyTorch, channels_last.
Where ORT is wanted but the export or its verification fails, the model stays
on PyTorch and ``runtime_reason`` says why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from models.catalog import ModelEntry
from models.onnx_runtime import OnnxUnavailable, OrtModel, exported, missing_libraries
from models.preprocess import Preprocessing, preprocessing_for
from models.weights import categories, load_pretrained

RUNTIME_SETTINGS = ("auto", "onnxruntime", "torch")
Runtime = Literal["onnxruntime", "torch"]


@dataclass(frozen=True)
class RuntimeChoice:
    runtime: Runtime
    reason: str


def wanted_runtime(setting: str, device: torch.device) -> RuntimeChoice:
    """What the setting asks for on ``device``, before any export is tried.
    Raises ValueError for an unknown setting."""
    if setting not in RUNTIME_SETTINGS:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIME_SETTINGS)}, got {setting!r}")
    if setting == "torch":
        return RuntimeChoice("torch", "eager PyTorch, as the runtime setting asks")
    if setting == "auto" and device.type != "cpu":
        return RuntimeChoice("torch", f"eager PyTorch on {device.type} (auto: ONNX Runtime on the CPU only)")
    if missing := missing_libraries():
        return RuntimeChoice("torch", f"{', '.join(missing)} not installed, so eager PyTorch")
    return RuntimeChoice("onnxruntime", "exported to ONNX and verified against eager PyTorch")


class Predictor:
    """One model on one runtime: ``classify`` maps a batch of preprocessed
    images (N, *input_shape), float32 as ``preprocessing`` makes them, to the
    top-k softmax probabilities and class indices, (N, k) each, on the CPU.

    Safe to call from several threads. ``concurrent_runs``: ONNX Runtime on
    the CPU runs concurrent calls, each on its own core (models/onnx_runtime.py's
    OrtModel), so batches need not wait for each other; elsewhere one forward
    runs at a time (eager PyTorch's callers would each start an OpenMP team of
    ``torch_threads`` on the same cores; a GPU runs one batch at a time anyway),
    and a batch is the only way requests share a forward pass.
    ``peak_concurrent_forwards``: the most forwards that have run at once."""

    def __init__(self, entry: ModelEntry, forward, choice: RuntimeChoice, device: torch.device) -> None:
        self.entry = entry
        self.categories = categories(entry)
        self.preprocessing: Preprocessing = preprocessing_for(entry)
        self.runtime: Runtime = choice.runtime
        self.runtime_reason = choice.reason
        self.device = device
        self._forward = forward
        self.concurrent_runs = choice.runtime == "onnxruntime" and device.type == "cpu"
        self._one_at_a_time = nullcontext() if self.concurrent_runs else threading.Lock()
        self._counter = threading.Lock()
        self._forwards_running = 0
        self.peak_concurrent_forwards = 0

    @classmethod
    def load(cls, entry: ModelEntry, device: torch.device, runtime: str = "auto", export_dir: Path | None = None,
             threads: int = 0, tolerance: float | None = None, concurrent: bool = False,
             on_stage: Callable[[str], None] | None = None) -> Predictor:
        """Load the weights (WeightsError when they are not here) and, when ORT
        is wanted, export and verify once (cached under ``export_dir``).
        ``threads``: ORT intra-op threads (0: one per core); ``concurrent``:
        calls will come from several threads at once (on the CPU, ORT then
        opens a one-thread session for them too: OrtModel); ``on_stage``
        hears each stage (loading, exporting, verifying ...) as it starts."""
        stage = on_stage or (lambda text: None)
        choice = wanted_runtime(runtime, device)
        stage("loading its weights")
        module = load_pretrained(entry, device)
        if choice.runtime == "onnxruntime":
            if export_dir is None:
                raise ValueError("ONNX Runtime needs an export directory")
            try:
                path, verification = exported(module, preprocessing_for(entry).input_shape, export_dir, entry.id,
                                              on_stage=stage,
                                              **({} if tolerance is None else {"tolerance": tolerance}))
                stage("opening an ONNX Runtime session")
                ort_model = OrtModel(path, verification, device, threads=threads, spinning=False,
                                     concurrent_runs=concurrent)
            except OnnxUnavailable as exc:
                choice = RuntimeChoice("torch", f"ONNX Runtime unavailable for this model ({exc}), so eager PyTorch")
            else:
                return cls(entry, ort_model, RuntimeChoice(
                    "onnxruntime", f"ONNX Runtime: {verification.reason} (max |difference| "
                                   f"{verification.max_abs_diff:.2g})"), device)
        # channels_last: oneDNN's depthwise and 1x1 convolutions run 1.5-2x faster in it on CPU
        module = module.to(memory_format=torch.channels_last)

        def eager(batch: torch.Tensor, share_cores: bool = False) -> torch.Tensor:  # one forward at a time anyway
            return module(batch.to(device, memory_format=torch.channels_last, non_blocking=True))

        return cls(entry, eager, choice, device)

    def _run(self, batch: torch.Tensor, share_cores: bool) -> torch.Tensor:
        """The forward; it shares the cores when asked or when another forward is in flight."""
        with self._one_at_a_time:
            with self._counter:
                self._forwards_running += 1
                self.peak_concurrent_forwards = max(self.peak_concurrent_forwards, self._forwards_running)
                share_cores = share_cores or self._forwards_running > 1
            try:
                with torch.inference_mode():
                    return self._forward(batch, share_cores)
            finally:
                with self._counter:
                    self._forwards_running -= 1

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        return self._run(batch, False)

    def classify(self, batch: torch.Tensor, topk: int,
                 share_cores: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities, indices), each (N, topk), highest first, on the CPU.
        ``share_cores``: other batches wait or run beside this one, so it takes one core
        where the runtime can (ONNX Runtime on the CPU), not all of them."""
        logits = self._run(batch, share_cores)
        with torch.inference_mode():
            top = logits.float().softmax(dim=-1).topk(topk, dim=-1)
            return top.values.cpu(), top.indices.cpu()  # waits for the device

    def warm_up(self) -> None:
        """One throwaway forward: the first pays for allocations and kernel choice."""
        self.classify(torch.zeros(1, *self.preprocessing.input_shape), 1)
