"""The speed runner on real small models at tiny inputs (CPU), its budgets and
cancellation, and its CUDA path wired to a stand-in for torch.cuda (no GPU here)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict

import pytest
import torch

import models.speed as speed
from models.registry import get_entry
from models.speed import SpeedCancelled, SpeedConfig, SpeedError, measure, quantile
from models.speed_backends import CudaBackend, DeviceInfo, device_info

# A generous time budget: a busy shared machine must not stop the larger batches.
TINY = dict(warmup=1, repeats=3, min_repeats=3, time_budget_s=600.0)


def _sane(result, batch_sizes):
    assert [b.batch_size for b in result.batches] == list(batch_sizes)
    for b in result.batches:
        assert b.runs >= 3  # torch.utils.benchmark's blocks of runs, at least min_repeats of them
        assert b.images_per_s > 0
        assert b.p90_ms >= b.median_ms >= b.min_ms > 0
        assert b.ms_per_image == pytest.approx(b.median_ms / b.batch_size)
        assert b.images_per_s == pytest.approx(1000 * b.batch_size / b.median_ms)
        # Linux: VmHWM can be reset; the growth includes the weights just built.
        assert b.peak_memory_bytes is not None and b.peak_memory_bytes >= result.weights_bytes
    # More work takes longer. The fastest run is the comparison that a busy
    # shared machine cannot invert (a median can catch a descheduled run).
    by_size = {b.batch_size: b for b in result.batches}
    assert by_size[8].min_ms >= by_size[1].min_ms


@pytest.fixture
def one_thread():
    """On a machine shared by many busy processes, OpenMP's thread barriers can
    cost a scheduler slice per operator, burying the work; one thread keeps
    latency proportional to work, which is what the sanity checks compare."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("model_id, resolution", [("squeezenet1_1", 64), ("mobilenet_v3_small", 96)])
def test_small_models_give_sane_figures(model_id, resolution, one_thread):
    progress = []
    result = measure(get_entry(model_id), "cpu", SpeedConfig(batch_sizes=(1, 2, 8), resolution=resolution, **TINY),
                     progress=lambda fraction, batch: progress.append((fraction, batch)))
    _sane(result, (1, 2, 8))
    assert result.model_id == model_id
    assert result.input_shape == [3, resolution, resolution]
    assert result.stopped == "completed" and result.stop_detail is None
    assert result.dtype == "float32" and result.variant == "float32"
    assert result.device.kind == "cpu" and result.device.threads == torch.get_num_threads()
    assert result.device.torch_version == torch.__version__
    params = sum(p.numel() for p in get_entry(model_id).build().parameters())
    assert result.weights_bytes >= 4 * params  # float32 parameters, plus buffers
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1
    assert {b for _, b in progress} == {1, 2, 8}
    json.dumps(asdict(result))  # what the cache stores


def test_channels_last_and_bfloat16_variants_run_on_cpu():
    result = measure(get_entry("squeezenet1_1"), "cpu",
                     SpeedConfig(batch_sizes=(1,), resolution=64, dtype="bfloat16", channels_last=True, **TINY))
    assert result.variant == "bfloat16-channels_last"
    assert result.weights_bytes == sum(2 * p.numel() for p in get_entry("squeezenet1_1").build().parameters())
    assert result.batches[0].images_per_s > 0


def test_constant_fill_gives_finite_outputs_from_uninitialised_storage():
    """Uninitialised memory may hold NaNs or denormals (slow on x86); the fill must not."""
    # swin_t: an integer index buffer that garbage would send out of bounds.
    for model_id, resolution in (("resnet18", 64), ("swin_t", 224)):
        model = speed.prepare_model(get_entry(model_id), torch.device("cpu"), SpeedConfig(resolution=resolution))
        assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())
        with torch.inference_mode():
            out = model(torch.rand(1, 3, resolution, resolution))
        assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_time_budget_stops_before_larger_batches():
    result = measure(get_entry("squeezenet1_1"), "cpu",
                     SpeedConfig(batch_sizes=(1, 2, 4), resolution=64, **{**TINY, "time_budget_s": 0.0}))
    assert [b.batch_size for b in result.batches] == [1]
    assert result.stopped == "time_budget" and "batch 2" in result.stop_detail


def test_memory_budget_stops_before_larger_batches():
    result = measure(get_entry("squeezenet1_1"), "cpu",
                     SpeedConfig(batch_sizes=(1, 2), resolution=64, memory_budget_bytes=1, **TINY))
    assert [b.batch_size for b in result.batches] == [1]
    assert result.stopped == "memory_budget"


def test_out_of_memory_keeps_the_batches_that_fitted(monkeypatch):
    real = speed._time_batch

    def running_out_at_4(model, backend, shape, *args):
        if shape[0] >= 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, backend, shape, *args)

    monkeypatch.setattr(speed, "_time_batch", running_out_at_4)
    entry = get_entry("squeezenet1_1")
    result = measure(entry, "cpu", SpeedConfig(batch_sizes=(1, 2, 4, 8), resolution=64, **TINY))
    assert [b.batch_size for b in result.batches] == [1, 2]
    assert result.stopped == "out_of_memory"
    with pytest.raises(SpeedError, match="out of memory at batch 4"):
        measure(entry, "cpu", SpeedConfig(batch_sizes=(4,), resolution=64, **TINY))


def test_cancel_flag_stops_a_measurement():
    entry = get_entry("squeezenet1_1")
    already = threading.Event()
    already.set()
    with pytest.raises(SpeedCancelled):
        measure(entry, "cpu", SpeedConfig(batch_sizes=(1,), resolution=64, **TINY), cancel=already)

    flag = threading.Event()
    batches_seen = []

    def progress(fraction, batch):
        batches_seen.append(batch)
        if batch == 2:
            flag.set()

    with pytest.raises(SpeedCancelled):
        measure(entry, "cpu", SpeedConfig(batch_sizes=(1, 2, 4), resolution=64, **TINY), progress=progress,
                cancel=flag)
    assert 4 not in batches_seen


@pytest.mark.parametrize("config, message", [
    (SpeedConfig(batch_sizes=()), "at least one"),
    (SpeedConfig(batch_sizes=(4, 2)), "increasing"),
    (SpeedConfig(batch_sizes=(1, 1)), "distinct"),
    (SpeedConfig(batch_sizes=(0,)), "between 1"),
    (SpeedConfig(dtype="float16"), "GPU"),
    (SpeedConfig(dtype="int8"), "dtype"),
    (SpeedConfig(repeats=2, min_repeats=3), "min_repeats"),
    (SpeedConfig(runtime="tvm"), "runtime must be one of"),
    (SpeedConfig(runtime="onnxruntime", dtype="bfloat16"), "float32"),
    (SpeedConfig(runtime="onnxruntime", channels_last=True), "float32, NCHW"),
])
def test_bad_configurations_are_refused(config, message):
    with pytest.raises(SpeedError, match=message):
        measure(get_entry("squeezenet1_1"), "cpu", config)


def test_quantile_interpolates_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert quantile(values, 0.5) == 3.0
    assert quantile(values, 0.9) == pytest.approx(4.0 + 0.6 * 6.0)
    assert quantile([7.0], 0.9) == 7.0
    assert quantile([1.0, 2.0], 0.5) == 1.5


def test_device_key_is_a_safe_file_name_and_separates_what_changes_timings():
    info = device_info("cpu")
    assert re.fullmatch(r"[a-z0-9.\-]+", info.key)
    assert info.key.startswith("cpu-") and f"-{info.threads}t-" in info.key and torch.__version__.split("+")[0] in info.key
    other = DeviceInfo(device="cpu", kind="cpu", name=info.name, torch_version=info.torch_version,
                             threads=info.threads + 1)
    assert other.key != info.key


class FakeCuda:
    """torch.cuda as the runner uses it, recording calls: the CUDA path, checked without a GPU."""

    def __init__(self):
        self.calls = []
        self.allocated = 1000

    def install(self, monkeypatch):
        cuda = torch.cuda
        monkeypatch.setattr(cuda, "synchronize", lambda device=None: self.calls.append("sync"))
        monkeypatch.setattr(cuda, "reset_peak_memory_stats", lambda device=None: self.calls.append("reset"))
        monkeypatch.setattr(cuda, "memory_allocated", lambda device=None: self.allocated)
        monkeypatch.setattr(cuda, "max_memory_allocated", lambda device=None: self.allocated + 5_000_000)
        monkeypatch.setattr(cuda, "empty_cache", lambda: self.calls.append("empty_cache"))
        monkeypatch.setattr(cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
        monkeypatch.setattr(cuda, "current_device", lambda: 0)
        monkeypatch.setattr(cuda, "get_device_properties",
                            lambda device=None: type("Props", (), {"total_memory": 80 * 2**30})())


def test_cuda_path_synchronises_around_every_run_and_reads_the_allocator_peak(monkeypatch):
    fake = FakeCuda()
    fake.install(monkeypatch)
    # Run the model on the CPU, with the CUDA backend's timing and memory calls.
    monkeypatch.setattr(speed, "backend_for", lambda device: CudaBackend(device))
    monkeypatch.setattr(speed, "device_info", lambda device: DeviceInfo(
        device="cuda:0", kind="cuda", name=torch.cuda.get_device_name(), torch_version=torch.__version__, threads=1))
    result = measure(get_entry("squeezenet1_1"), "cpu", SpeedConfig(batch_sizes=(1, 2), resolution=64, **TINY))
    # torch.utils.benchmark reads the clock through the backend: a sync before each reading,
    # two readings per timed block, and at least warm-up + min_repeats blocks per batch size.
    batches = "".join("r" if call == "reset" else "s" if call == "sync" else "e" for call in fake.calls)
    assert re.fullmatch(r"r(ss)+r(ss)+e", batches), batches
    assert all(len(block) >= 2 * (1 + TINY["min_repeats"]) for block in re.findall(r"(?:ss)+", batches))
    assert [b.peak_memory_bytes for b in result.batches] == [5_000_000, 5_000_000]  # peak minus the baseline
    assert result.memory_measure.startswith("torch.cuda.max_memory_allocated")
    assert CudaBackend(torch.device("cpu")).default_memory_budget() == int(0.8 * 80 * 2**30) - 1000


def test_cuda_device_info_names_the_gpu(monkeypatch):
    FakeCuda().install(monkeypatch)
    info = device_info("cuda")
    assert (info.device, info.kind, info.name) == ("cuda:0", "cuda", "NVIDIA H100 80GB HBM3")
    assert info.key.startswith("cuda-nvidia-h100-80gb-hbm3-torch")
