"""The one home for running a model on ONNX Runtime: export it with torch's
exporter, verify the export against eager PyTorch, keep it on disk, and open
an inference session on it. The prediction worker and the speed runner both
use it.

- Export: ``torch.onnx.export(dynamo=True)`` (torch.export + onnxscript) with
  a dynamic batch dimension, one self-contained .onnx file (no external data).
- Verification, before a file is kept: a seeded probe batch runs through both;
  the logits must agree within ``tolerance`` (absolute, 1e-4 by default; the
  speed runner's constant-filled nets scale it by the logits' magnitude), and
  ORT's top-5 must be eager's top-5: the same classes in the same order,
  except where eager's own logits tie within the tolerance (a tie has no
  order to keep).
- Cache: ``<directory>/<name>-<key>.onnx`` with a JSON record beside it; the
  key hashes the weights (every tensor's bytes), the versions of torch,
  onnx, onnxscript and onnxruntime, the input shape and the tolerance, so new
  weights or a new library never reuse a stale file or verdict. A failed export or verification is recorded too (same
  key), so a model that cannot run on ORT is not re-exported on every load.
  Files appear whole (written in a temporary file, then renamed) and one
  process exports a given key at a time (a filelock beside it). Verdicts of
  the verification are kept; an exception from the exporter is not (it is
  retried at the next load), so a passing glitch is never cached as "fails".
- Threads: torch.export keeps global tracing state (torch.fx.traceback's
  current_meta), so one export runs at a time in a process (``_EXPORTING``).

Errors: ``OnnxUnavailable`` (the export or verification failed, or
onnxruntime is not installed; its message is the reason shown to users).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.meta import TORCH_TRACING

# torch.onnx's onnx_ir passes log each step at INFO: 70-160 lines per export in a server's log
logging.getLogger("onnx_ir").setLevel(logging.WARNING)

OPSET = 18
TOLERANCE = 1e-4  # max |logit difference| between ORT and eager PyTorch
TOPK = 5
MAX_BATCH = 1024  # the dynamic batch dimension's upper bound
PROBE_BATCH = 2
_LIBRARIES = ("torch", "onnx", "onnxscript", "onnxruntime")
_EXPORTING = threading.Lock()
# The stages of a first load, as users read them (the /predict page shows them while a model is prepared).
EXPORTING = "exporting it to ONNX with torch.export (first use only: up to a minute or so)"
VERIFYING = "checking the export against eager PyTorch on a probe batch"


class OnnxUnavailable(Exception):
    """This model does not run on ONNX Runtime here; the message says why."""


@dataclass(frozen=True)
class Verification:
    """What the export was checked with; kept in the cache's JSON record."""

    ok: bool
    reason: str  # why it failed, or what was checked
    max_abs_diff: float | None = None  # between ORT's and eager's logits on the probe batch
    tolerance: float | None = None
    probe_shape: tuple[int, ...] | None = None


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def missing_libraries() -> list[str]:
    return [name for name, version in library_versions().items() if version is None]


def weights_digest(module: nn.Module) -> str:
    """BLAKE2b of every parameter and buffer (name, dtype, shape, bytes), in state-dict order."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def export_key(module: nn.Module, input_shape: tuple[int, int, int], tolerance: float, relative: bool) -> str:
    """What an export and its verdict depend on: weights, libraries, input, and the check's tolerance."""
    payload = {"weights": weights_digest(module), "versions": library_versions(), "opset": OPSET,
               "input": list(input_shape), "max_batch": MAX_BATCH, "tolerance": tolerance, "relative": relative}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def probe_batch(input_shape: tuple[int, int, int], batch: int = PROBE_BATCH) -> torch.Tensor:
    """Seeded standard-normal images: about the range of normalised inputs."""
    return torch.randn((batch, *input_shape), generator=torch.Generator().manual_seed(0))


def compare_logits(eager: np.ndarray, ort: np.ndarray, tolerance: float) -> tuple[float, str | None]:
    """Max |difference| and, when they disagree, why (see the module docstring)."""
    diff = float(np.max(np.abs(eager.astype(np.float64) - ort))) if eager.size else 0.0
    if not np.isfinite(diff) or diff > tolerance:
        return diff, f"logits differ by up to {diff:.3g}, over the tolerance {tolerance:.3g}"
    k = min(TOPK, eager.shape[-1])
    for row, (e, o) in enumerate(zip(eager, ort)):
        eager_top = np.sort(e)[::-1][:k]
        ort_top = np.argsort(-o, kind="stable")[:k]
        if np.any(np.abs(e[ort_top] - eager_top) > tolerance):
            return diff, f"top-{k} differs on probe image {row}: eager {np.argsort(-e)[:k].tolist()}, " \
                         f"ONNX Runtime {ort_top.tolist()}"
    return diff, None


def session_options(threads: int, spinning: bool):
    """Intra-op threads (0: one per core); ``spinning``: idle threads busy-wait
    for the next run (fastest back to back; burns cores another thread of a
    server may need, like OMP_WAIT_POLICY=ACTIVE)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3  # errors only
    return options


def providers_for(device: torch.device) -> list[str]:
    import onnxruntime as ort

    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise OnnxUnavailable("this onnxruntime build has no CUDA execution provider "
                                  "(pip install onnxruntime-gpu)")
        return ["CUDAExecutionProvider"]
    return ["CPUExecutionProvider"]


class OrtModel:
    """An exported model on an ONNX Runtime session: called like the eager
    module, (N, C, H, W) float32 tensor in, (N, classes) logits tensor out.
    ``session.run`` releases the GIL, so other threads run meanwhile.

    ``concurrent_runs`` (a server's CPU model): a second session of one
    intra-op thread takes the calls whose caller says other work runs or
    waits beside them (``share_cores``: models/predictor.py's Predictor counts
    its forwards in flight), so a lone call gets every core and concurrent
    calls get a core each without sharing one thread pool. Measured on this 2-core CPU with EfficientNet-Lite0 at batch
    1: a 2-thread session alone, 316 img/s; two callers of it, 368 img/s at
    5.17 ms of CPU per image; two callers of 1-thread sessions, 428 img/s at
    4.63 ms (bench/predict.py reports the two-caller figure). It costs the
    second session's memory: about 1.7x the weights (32 MB for Lite0's 19 MB)."""

    def __init__(self, path: Path, verification: Verification, device: torch.device, threads: int = 0,
                 spinning: bool = False, concurrent_runs: bool = False) -> None:
        import onnxruntime as ort

        self.path = path
        self.verification = verification
        options = session_options(threads, spinning)
        self.session = ort.InferenceSession(str(path), options, providers=providers_for(device))
        self._narrow = None
        if concurrent_runs and device.type == "cpu" and options.intra_op_num_threads > 1:
            self._narrow = ort.InferenceSession(str(path), session_options(1, spinning),
                                                providers=providers_for(device))
        self._input = self.session.get_inputs()[0].name
        self._output = self.session.get_outputs()[0].name

    def run(self, batch: np.ndarray, share_cores: bool = False) -> np.ndarray:
        session = self._narrow if share_cores and self._narrow is not None else self.session
        return session.run([self._output], {self._input: batch})[0]

    def __call__(self, batch: torch.Tensor, share_cores: bool = False) -> torch.Tensor:
        array = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.run(array, share_cores))


def _export(module: nn.Module, target: Path, example: torch.Tensor) -> None:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with TORCH_TRACING:  # never beside a meta trace in another thread (models/meta.py)
        torch.onnx.export(module, (example,), str(target), dynamo=True, external_data=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"], dynamic_shapes=({0: batch},),
                          verbose=False, report=False)


def _verify(module: nn.Module, path: Path, input_shape: tuple[int, int, int], tolerance: float,
            relative: bool) -> Verification:
    probe = probe_batch(input_shape)
    runner = OrtModel(path, Verification(True, ""), torch.device("cpu"), threads=0, spinning=False)
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    worst, failure = 0.0, None
    for batch in (probe, probe[:1]):  # the dynamic batch dimension, both ways
        with torch.inference_mode():
            eager = module(batch.to(device)).float().cpu().numpy()
        scale = max(1.0, float(np.max(np.abs(eager)))) if relative else 1.0
        diff, failure = compare_logits(eager, runner.run(batch.numpy()), tolerance * scale)
        worst = max(worst, diff)
        if failure:
            break
    checked = f"logits within {tolerance:g}{' x their magnitude' if relative else ''} and the same " \
              f"top-{TOPK} as eager PyTorch on a probe batch of {len(probe)}"
    return Verification(ok=failure is None, reason=failure or checked, max_abs_diff=worst, tolerance=tolerance,
                        probe_shape=tuple(probe.shape))


def _write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(text)
    os.replace(f.name, path)


def exported(module: nn.Module, input_shape: tuple[int, int, int], directory: Path, name: str, *,
             tolerance: float = TOLERANCE, relative_tolerance: bool = False,
             on_stage: Callable[[str], None] | None = None) -> tuple[Path, Verification]:
    """The verified export of ``module`` (eval mode, float32) for inputs
    (N, *input_shape), from the cache or made now (seconds to a minute;
    ``on_stage`` hears "exporting ..." and "verifying ..." as they start).

    Raises OnnxUnavailable with the reason when onnxruntime is missing, or the
    export or its verification failed (now or when this key was first tried)."""
    if missing := missing_libraries():
        raise OnnxUnavailable(f"{', '.join(missing)} not installed (pip install {' '.join(missing)})")
    from filelock import FileLock

    directory.mkdir(parents=True, exist_ok=True)
    key = export_key(module, input_shape, tolerance, relative_tolerance)
    path = directory / f"{name}-{key}.onnx"
    record = path.with_suffix(".json")
    with FileLock(str(path) + ".lock"):
        if record.is_file():
            verification = Verification(**{**json.loads(record.read_text())["verification"]})
        else:
            with _EXPORTING:
                verification, verdict = _export_and_verify(module, input_shape, path, tolerance, relative_tolerance,
                                                           on_stage or (lambda text: None))
            if verdict:
                _write_atomically(record, json.dumps({
                    "name": name, "key": key, "input_shape": list(input_shape), "opset": OPSET,
                    "versions": library_versions(), "verification": asdict(verification)}, indent=1))
    if not verification.ok:
        raise OnnxUnavailable(verification.reason)
    if not path.is_file():
        raise OnnxUnavailable(f"the export record says verified, but {path.name} is gone; delete {record.name}")
    return path, verification


def has_verified_export(directory: Path, name: str) -> bool:
    """Whether ``directory`` records a verified export of ``name`` (for any weights or library
    versions: a hint for a page, never a promise; ``exported`` checks its own key)."""
    for record in directory.glob(f"{name}-*.json"):
        try:
            found = json.loads(record.read_text())
            if found["name"] == name and found["verification"]["ok"]:
                return True
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return False


def _export_and_verify(module: nn.Module, input_shape: tuple[int, int, int], path: Path, tolerance: float,
                       relative: bool, stage: Callable[[str], None]) -> tuple[Verification, bool]:
    """The verification, and whether it is a verdict worth keeping (the
    export ran and ORT ran it) rather than an exception."""
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as scratch:
        target = Path(scratch) / "model.onnx"
        stage(EXPORTING)
        try:
            _export(module, target, probe_batch(input_shape).to(next(module.parameters()).device))
        except Exception as exc:  # the exporter raises many kinds; all mean "stay on PyTorch"
            return Verification(ok=False, reason=f"torch.onnx.export failed: {_first_line(exc)}"), False
        stage(VERIFYING)
        try:
            verification = _verify(module, target, input_shape, tolerance, relative)
        except Exception as exc:  # ORT could not load or run the graph
            return Verification(ok=False, reason=f"ONNX Runtime could not run the export: {_first_line(exc)}"), True
        if verification.ok:
            os.replace(target, path)
        return verification, True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"
