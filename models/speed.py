"""Measured speed of a catalog entry on a real device: latency per batch,
images per second and peak memory, for batch sizes 1, 2, 4 ... 64, on a
runtime: eager PyTorch (optionally channels_last) or ONNX Runtime (the same
weights exported and verified by models/onnx_runtime.py; float32 only).

Timing is torch.utils.benchmark's: ``Timer.timeit(warmup)`` runs the
untimed warm-up (and gives a first cost per run), then ``blocked_autorange``
(its own block-size estimate warms further) times blocks of runs until about
``repeats`` runs' worth of time has passed, at least ``min_repeats`` runs,
within the batch's share of the time budget. Each figure is per run: a block's
time over its run count; median, p90 and min are over the blocks.

Weights are not needed: the model is built in uninitialised storage
(``build_empty``) and every tensor is then filled with a cheap deterministic
constant (weights 1/fan-in, norm scales 1, biases and buffers 0, running
variances 1). Timing does not depend on the values, but uninitialised memory
can hold NaNs and denormals (which run far slower on x86 CPUs) and garbage in
integer index buffers (Swin's relative-position index) that would crash; the
fill keeps activations finite and clear of the denormal range (a layer
averages its inputs; residual sums at most double them), without paying for
random init. The input is uniform noise from a seeded generator.

Peak memory is what the measurement adds to the process, weights included:
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``
  at the start of each batch, minus what was allocated before the model was
  built (the caching allocator's reserve and cuDNN workspaces outside
  PyTorch's allocator are not counted).
- CPU: the kernel's resident-set high-water mark (VmHWM in
  /proc/self/status), reset before each batch by writing 5 to
  /proc/self/clear_refs (Linux >= 4.0), minus the RSS before the model was
  built; freed heap pages are handed back (malloc_trim) before each reading,
  so memory an earlier model left resident does not hide this one's. It is
  process-wide: anything else the process does at the same time counts too.
  Where the reset is not allowed, memory is reported as null.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Protocol

import torch
import torch.utils.benchmark as benchmark
from torch import nn

from models.analysis import input_shape_for
from models.build import build_empty
from models.catalog import ModelEntry
from models.onnx_runtime import OnnxUnavailable, OrtModel, exported, library_versions
from models.speed_backends import CpuBackend, CudaBackend, DeviceInfo, backend_for, device_info

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
MAX_BATCH_SIZE = 1024
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# float16 convolutions on a CPU are emulated and meaningless as a speed figure.
CPU_DTYPES = ("float32", "bfloat16")
# torch.compile (inductor) is not one of them: it works here (gcc builds its C++
# kernels; EfficientNet-Lite0's logits within 6e-5 of eager), but compiling that
# one model for one input shape took 604 s of wall time on the 2 shared cores
# (an ad-hoc run of what bench/torch_compile.py repeats, load average 7-9), and every batch size compiles again
# (dynamic=False), against a 20 s budget per model here; and its batch-1 latency,
# 17.3 ms, stays behind ONNX Runtime's (about 6 ms) with no compile wait.
RUNTIMES = ("eager", "onnxruntime")
StopReason = Literal["completed", "time_budget", "memory_budget", "out_of_memory"]


class SpeedError(Exception):
    """A model that could not be measured at all (bad parameters, out of memory at batch 1)."""


class SpeedCancelled(Exception):
    """The cancel flag was raised while measuring."""


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


# fraction of this model done (0..1), the batch size being measured
ProgressCallback = Callable[[float, int], None]


@dataclass(frozen=True)
class SpeedConfig:
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    resolution: int | None = None  # square input side; None: the model's own input size
    dtype: str = "float32"
    channels_last: bool = False
    runtime: str = "eager"  # "eager" | "onnxruntime" (RUNTIMES)
    warmup: int = 2  # untimed runs per batch size
    repeats: int = 10  # timed runs per batch size, at most
    min_repeats: int = 3  # timed runs per batch size, at least
    # The whole model's measurement aims to stay within this: a batch size whose
    # predicted cost would overrun it is not started.
    time_budget_s: float = 20.0
    # Peak memory a batch may need; None: 80% of the GPU, half the available RAM.
    memory_budget_bytes: int | None = None

    @property
    def variant(self) -> str:
        return self.dtype + ("-channels_last" if self.channels_last else "") + (
            "" if self.runtime == "eager" else f"-{self.runtime}")


def validate_config(config: SpeedConfig, device: torch.device) -> None:
    """Raise SpeedError for a configuration that cannot be measured on ``device``."""
    if not config.batch_sizes:
        raise SpeedError("batch_sizes must name at least one batch size")
    if any(not 1 <= b <= MAX_BATCH_SIZE for b in config.batch_sizes):
        raise SpeedError(f"batch sizes must be between 1 and {MAX_BATCH_SIZE}, got {list(config.batch_sizes)}")
    if list(config.batch_sizes) != sorted(set(config.batch_sizes)):
        raise SpeedError(f"batch sizes must be distinct and increasing, got {list(config.batch_sizes)}")
    if config.dtype not in DTYPES:
        raise SpeedError(f"dtype must be one of {', '.join(DTYPES)}, got {config.dtype!r}")
    if device.type == "cpu" and config.dtype not in CPU_DTYPES:
        raise SpeedError(f"{config.dtype} runs only on a GPU here; on the CPU use {' or '.join(CPU_DTYPES)}")
    if config.runtime not in RUNTIMES:
        raise SpeedError(f"runtime must be one of {', '.join(RUNTIMES)}, got {config.runtime!r}")
    if config.runtime == "onnxruntime" and device.type != "cpu":
        raise SpeedError("ONNX Runtime is measured on the CPU only here")
    if config.runtime == "onnxruntime" and (config.dtype != "float32" or config.channels_last):
        raise SpeedError("ONNX Runtime is measured in float32, NCHW (its CPU provider picks its own layouts)")
    if not 1 <= config.min_repeats <= config.repeats or config.warmup < 1:
        raise SpeedError("need warmup >= 1 and 1 <= min_repeats <= repeats")


@dataclass
class BatchTiming:
    batch_size: int
    runs: int  # timed runs behind the statistics
    median_ms: float  # latency of one forward pass of the whole batch
    p90_ms: float
    min_ms: float
    ms_per_image: float  # median_ms / batch_size
    images_per_s: float  # batch_size / median
    peak_memory_bytes: int | None  # see the module docstring for what it counts


@dataclass
class SpeedResult:
    model_id: str
    input_shape: list[int]  # [C, H, W] of one image
    dtype: str
    channels_last: bool
    variant: str
    device: DeviceInfo
    memory_measure: str
    weights_bytes: int  # parameters and buffers at the measured dtype
    batches: list[BatchTiming] = field(default_factory=list)
    stopped: StopReason = "completed"
    stop_detail: str | None = None
    seconds: float = 0.0  # wall time of the whole measurement, build included
    measured_at: str = ""  # ISO 8601, UTC
    runtime: str = "eager"  # "eager" | "onnxruntime"
    runtime_detail: str | None = None  # ONNX Runtime: what the export was verified with


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@torch.no_grad()
def fill_constant(model: nn.Module) -> nn.Module:
    """Deterministic finite values in place of uninitialised memory (see the module docstring)."""
    for name, param in model.named_parameters():
        if param.dim() >= 2:
            param.fill_(1.0 / max(1, param[0].numel()))
        elif name.endswith("bias"):
            param.zero_()
        else:
            param.fill_(1.0)
    for name, buffer in model.named_buffers():
        if name.endswith("running_var"):
            buffer.fill_(1)
        else:
            buffer.zero_()
    return model


def prepare_model(entry: ModelEntry, device: torch.device, config: SpeedConfig) -> nn.Module:
    model = fill_constant(build_empty(entry, device, config.resolution))
    model = model.to(dtype=DTYPES[config.dtype])
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def _input(shape: tuple[int, ...], device: torch.device, config: SpeedConfig) -> torch.Tensor:
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(shape, generator=generator, device=device).to(DTYPES[config.dtype])
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x


def _runner(entry: ModelEntry, model: nn.Module, config: SpeedConfig, input_shape: tuple[int, int, int],
            export_dir: Path | None) -> tuple[Callable[[torch.Tensor], object], str | None]:
    """What one timed run calls with the input batch, and what the runtime
    was verified with. ONNX Runtime: the export of these very (constant)
    weights, checked against ``model`` (tolerance scaled by the logits'
    magnitude: constant weights make large logits); as many intra-op threads
    as torch has, not spinning between runs, as the prediction server runs it
    (spinning threads lose their time slices on a shared machine)."""
    if config.runtime == "eager":
        return model, None
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path, verification = exported(model, input_shape, export_dir or Path(scratch), f"speed-{entry.id}",
                                          relative_tolerance=True)
            ort_model = OrtModel(path, verification, torch.device("cpu"), threads=torch.get_num_threads(),
                                 spinning=False)
        except OnnxUnavailable as exc:
            raise SpeedError(f"{entry.id} cannot run on ONNX Runtime here: {exc}") from None

    def run(x: torch.Tensor) -> object:
        return ort_model.run(x.numpy())

    return run, f"ONNX Runtime {library_versions()['onnxruntime']}, CPU provider: {verification.reason}"


def measure(entry: ModelEntry, device: str | torch.device = "cpu", config: SpeedConfig = SpeedConfig(),
            progress: ProgressCallback | None = None, cancel: CancelFlag | None = None,
            export_dir: Path | None = None) -> SpeedResult:
    """Time ``entry`` on ``device`` for each batch size of ``config``;
    ONNX Runtime exports are cached in ``export_dir`` (None: a scratch directory).

    Raises SpeedError (unmeasurable), SpeedCancelled (``cancel`` was set).
    """
    device = torch.device(device)
    validate_config(config, device)
    started = time.perf_counter()
    backend = backend_for(device)
    budget = config.memory_budget_bytes or backend.default_memory_budget()
    _, channels, height, width = input_shape_for(entry, config.resolution)

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise SpeedCancelled(f"measuring {entry.id} was cancelled")

    check_cancel()
    model = forward = None
    try:
        try:
            model = prepare_model(entry, device, config)
        except Exception as exc:
            if _is_out_of_memory(exc):
                raise SpeedError(f"{entry.id} does not fit in memory on {device}") from None
            raise
        weights_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
        forward, runtime_detail = _runner(entry, model, config, (channels, height, width), export_dir)
        if forward is not model:
            model = None  # ONNX Runtime holds its own copy of the weights
            backend.release()  # and the exporter's garbage goes before memory is read
        timing_started = time.perf_counter()  # an export (once per model, cached) is not the budget's
        result = SpeedResult(
            model_id=entry.id, input_shape=[channels, height, width], dtype=config.dtype,
            channels_last=config.channels_last, variant=config.variant, device=device_info(device),
            memory_measure=backend.measure, weights_bytes=weights_bytes, runtime=config.runtime,
            runtime_detail=runtime_detail,
        )
        n_batches = len(config.batch_sizes)
        for index, batch_size in enumerate(config.batch_sizes):
            if result.batches:  # predict this batch from the previous one
                previous = result.batches[-1]
                scale = batch_size / previous.batch_size
                cost_s = previous.median_ms / 1000 * scale * (config.warmup + config.min_repeats)
                if time.perf_counter() - timing_started + cost_s > config.time_budget_s:
                    result.stopped = "time_budget"
                    result.stop_detail = (f"batch {batch_size} would need about {cost_s:.1f} s, past the "
                                          f"{config.time_budget_s:g} s budget")
                    break
                if previous.peak_memory_bytes is not None:
                    activations = max(0, previous.peak_memory_bytes - weights_bytes)
                    predicted = weights_bytes + activations * scale
                    if predicted > budget:
                        result.stopped = "memory_budget"
                        result.stop_detail = (f"batch {batch_size} would need about {predicted / 2**20:.0f} MiB, "
                                              f"past the {budget / 2**20:.0f} MiB budget")
                        break
            check_cancel()

            def report(done: float, index: int = index, batch_size: int = batch_size) -> None:
                if progress:
                    progress((index + min(1.0, done)) / n_batches, batch_size)

            report(0)
            try:
                timing = _time_batch(forward, backend, (batch_size, channels, height, width), config, report,
                                     check_cancel)
            except SpeedCancelled:
                raise
            except Exception as exc:
                if not _is_out_of_memory(exc):
                    raise
                backend.release()
                if not result.batches:
                    raise SpeedError(f"{entry.id} runs out of memory at batch {batch_size} on {device}") from None
                result.stopped = "out_of_memory"
                result.stop_detail = f"batch {batch_size} ran out of memory"
                break
            result.batches.append(timing)
        if progress:
            progress(1.0, result.batches[-1].batch_size)
        result.seconds = time.perf_counter() - started
        result.measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return result
    finally:
        del model, forward
        backend.release()


def _time_batch(forward: Callable[[torch.Tensor], object], backend: CpuBackend | CudaBackend,
                shape: tuple[int, ...], config: SpeedConfig, on_progress: Callable[[float], None],
                check_cancel: Callable[[], None]) -> BatchTiming:
    """One batch size, timed by torch.utils.benchmark (see the module docstring)."""
    x = _input(shape, backend.device, config)
    batch_size = shape[0]
    share_s = config.time_budget_s / len(config.batch_sizes)
    reset_ok = backend.reset_peak()
    # The clock waits for the measured device (torch's default waits for the current accelerator).
    timer = benchmark.Timer(stmt="forward(x)", globals={"forward": forward, "x": x},
                            timer=lambda: (backend.sync(), time.perf_counter())[1],
                            num_threads=torch.get_num_threads())
    with torch.inference_mode():
        check_cancel()
        per_run_s = timer.timeit(config.warmup).median  # untimed warm-up; a first cost estimate
        on_progress(config.warmup / (config.warmup + config.repeats))
        target_s = max(per_run_s * config.min_repeats, min(per_run_s * config.repeats, share_s))
        timed = [0.0]

        def after_block(number: int, seconds: float) -> None:
            timed[0] += seconds
            on_progress((config.warmup + config.repeats * timed[0] / target_s) / (config.warmup + config.repeats))
            check_cancel()

        # A noisy warm-up can underestimate the cost: more rounds until min_repeats blocks are timed.
        rounds, runs = [], 0
        while sum(len(m.times) for m in rounds) < config.min_repeats:
            rounds.append(timer.blocked_autorange(callback=after_block, min_run_time=target_s))
            runs += len(rounds[-1].times) * rounds[-1].number_per_run
        measurement = rounds[0] if len(rounds) == 1 else benchmark.Measurement.merge(rounds)[0]
    peak = backend.peak_bytes(reset_ok)
    del x
    times = sorted(measurement.times)
    median = measurement.median
    return BatchTiming(
        batch_size=batch_size, runs=runs, median_ms=median * 1000,
        p90_ms=max(median, quantile(times, 0.9)) * 1000, min_ms=times[0] * 1000,
        ms_per_image=median * 1000 / batch_size, images_per_s=batch_size / median, peak_memory_bytes=peak,
    )
