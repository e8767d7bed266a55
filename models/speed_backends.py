"""Where a speed measurement runs: the device's name for the record and the
cache key, and per device kind how to time (synchronise or not) and how to
read peak memory. See models/speed.py's docstring for what the memory counts."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import platform
from dataclasses import dataclass

import torch


@dataclass
class DeviceInfo:
    device: str  # "cpu", "cuda:0"
    kind: str  # "cpu" or "cuda"
    name: str  # CPU model name or GPU name
    torch_version: str
    threads: int  # torch intra-op threads (CPU work, and the CPU side of CUDA launches)

    @property
    def key(self) -> str:
        """A file-name-safe key: results from another device, torch or thread count never mix."""
        slug = "".join(c if c.isalnum() else "-" for c in self.name.lower()).strip("-")
        slug = "-".join(part for part in slug.split("-") if part)[:60] or self.kind
        threads = f"-{self.threads}t" if self.kind == "cpu" else ""
        torch_version = "".join(c if c.isalnum() or c == "." else "-" for c in self.torch_version)
        return f"{self.kind}-{slug}{threads}-torch{torch_version}"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_info(device: str | torch.device) -> DeviceInfo:
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        device = torch.device("cuda", index)
        name = torch.cuda.get_device_name(device)
    else:
        name = cpu_name()
    return DeviceInfo(device=str(device), kind=device.type, name=name,
                      torch_version=torch.__version__, threads=torch.get_num_threads())


def _read_status(field_name: str) -> int | None:
    """A /proc/self/status memory field (kB) in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc's malloc_trim), so memory a
    previous model left resident-but-free does not hide this one's growth.
    (No gc.collect here: tensors die by reference count, and a full collection
    costs a large process ~0.4 s.)"""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _load_libc()


class CpuBackend:
    """Timing needs no synchronisation; memory is the RSS high-water mark."""

    measure = "process peak RSS growth (VmHWM reset via /proc/self/clear_refs), weights included"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        _trim_heap()
        self.baseline = _read_status("VmRSS") or 0

    def sync(self) -> None:
        pass

    def reset_peak(self) -> bool:
        _trim_heap()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def peak_bytes(self, reset_ok: bool) -> int | None:
        peak = _read_status("VmHWM")
        return None if peak is None or not reset_ok else max(0, peak - self.baseline)

    def default_memory_budget(self) -> int:
        available = None
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        available = int(line.split()[1]) * 1024
        except OSError:
            pass
        return (available or 8 * 2**30) // 2

    def release(self) -> None:
        gc.collect()


class CudaBackend:
    """Synchronised timing; memory from the caching allocator's peak statistics."""

    measure = "torch.cuda.max_memory_allocated growth (reset per batch), weights included"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.baseline = torch.cuda.memory_allocated(device)

    def sync(self) -> None:
        torch.cuda.synchronize(self.device)

    def reset_peak(self) -> bool:
        torch.cuda.reset_peak_memory_stats(self.device)
        return True

    def peak_bytes(self, reset_ok: bool) -> int | None:
        return max(0, torch.cuda.max_memory_allocated(self.device) - self.baseline)

    def default_memory_budget(self) -> int:
        return int(0.8 * torch.cuda.get_device_properties(self.device).total_memory) - self.baseline

    def release(self) -> None:
        gc.collect()
        torch.cuda.empty_cache()


def backend_for(device: torch.device) -> CpuBackend | CudaBackend:
    return CudaBackend(device) if device.type == "cuda" else CpuBackend(device)
