"""Speed measurements in the background: one job at a time across all worker
processes, in a thread (never the event loop), with progress, cancellation,
and results kept on disk per device so a reload shows them at once."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import torch
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.errors import Conflict, InvalidParameter, NotFound
from app.state_store import Heartbeat, StateStore, new_owner, write_atomically
from models.analysis import input_shape_for
from models.catalog import ModelEntry
from models.speed import SpeedCancelled, SpeedConfig, SpeedError, SpeedResult, measure, validate_config
from models.speed_backends import DeviceInfo, device_info

log = logging.getLogger("convzoo.speed")

JOB_HISTORY = 32
KIND, CANCEL_KIND = "speed_job", "speed_cancel"  # documents in the shared store
LEASE = "speed"  # held by the worker that runs the measurement
LEASE_TTL_S, HEARTBEAT_S = 10.0, 1.0
_RESULT = TypeAdapter(SpeedResult)


class SpeedParams(BaseModel):
    """What a caller may choose about a measurement (POST body)."""

    model_config = ConfigDict(extra="forbid")

    batch_sizes: list[int] | None = Field(None, min_length=1, description="Increasing batch sizes; default 1, 2, 4 ... 64")
    resolution: int | None = Field(None, ge=8, le=1024, description="Square input side; default: the model's own")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    channels_last: bool = False
    runtime: Literal["eager", "onnxruntime"] = Field("eager", description="eager PyTorch, or ONNX Runtime "
                                                     "(float32, CPU; the same weights exported and verified)")
    warmup: int = Field(2, ge=1, le=20, description="Untimed runs per batch size")
    repeats: int = Field(10, ge=1, le=100, description="Timed runs per batch size, at most")
    time_budget_s: float | None = Field(None, gt=0, le=3600, description="Seconds per model, roughly; larger "
                                        "batches that would overrun it are skipped. Default: the server's setting")

    def config(self, default_time_budget_s: float) -> SpeedConfig:
        base = SpeedConfig(time_budget_s=self.time_budget_s or default_time_budget_s)
        return replace(base, batch_sizes=tuple(base.batch_sizes if self.batch_sizes is None else self.batch_sizes), resolution=self.resolution,
                       dtype=self.dtype, channels_last=self.channels_last, runtime=self.runtime, warmup=self.warmup,
                       repeats=self.repeats, min_repeats=min(base.min_repeats, self.repeats))


class MeasureAllParams(SpeedParams):
    models: list[str] | None = Field(None, min_length=1, description="Model ids; default: the whole catalog")
    skip_measured: bool = Field(True, description="Leave out models already measured with these settings")


class JobProgress(BaseModel):
    fraction: float = 0.0  # of the whole job, 0..1
    model_index: int = 0  # 1-based index of the model being measured
    model_count: int = 0
    current_model: str | None = None
    batch_size: int | None = None


class ModelOutcome(BaseModel):
    model_id: str
    status: Literal["measured", "skipped", "failed", "cancelled"]
    error: str | None = None


class Job(BaseModel):
    id: str
    kind: Literal["model", "all"]
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    device: str
    models: list[str]
    params: SpeedParams
    progress: JobProgress
    outcomes: list[ModelOutcome] = []
    result: SpeedResult | None = None  # a one-model job's measurement
    error: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None


class JobList(BaseModel):
    jobs: list[Job]  # newest first
    running: str | None  # the id of the queued or running job, if any


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def result_key(result: SpeedResult) -> str:
    channels, height, width = result.input_shape
    return f"{height}x{width}-{result.variant}"


class SpeedStore:
    """Results on disk: ``speed/<device key>/<model id>.json`` holds one result per
    resolution and variant (dtype, memory format)."""

    def __init__(self, cache_dir: Path, device: DeviceInfo) -> None:
        self.device = device
        self.directory = cache_dir / "speed" / device.key
        self._lock = threading.Lock()

    def _path(self, model_id: str) -> Path:
        return self.directory / f"{model_id}.json"

    def _read(self, model_id: str) -> dict[str, SpeedResult]:
        try:
            raw = json.loads(self._path(model_id).read_text())
            return {key: _RESULT.validate_python(value) for key, value in raw["results"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable speed cache file for %s", model_id)
            return {}

    def results(self, model_id: str) -> list[SpeedResult]:
        """Newest first."""
        return sorted(self._read(model_id).values(), key=lambda r: r.measured_at, reverse=True)

    def has(self, entry: ModelEntry, config: SpeedConfig) -> bool:
        _, channels, height, width = input_shape_for(entry, config.resolution)
        return f"{height}x{width}-{config.variant}" in self._read(entry.id)

    def measured_ids(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.json")) if self.directory.is_dir() else []

    def save(self, result: SpeedResult) -> None:
        """Add ``result`` to its model's file. Read, add and write under a file
        lock (filelock), so a server's worker and `convzoo bench` saving at the
        same time keep both results; written atomically for readers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(result.model_id)
        with self._lock, FileLock(path.with_name(f".{path.name}.lock")):
            results = self._read(result.model_id)
            results[result_key(result)] = result
            write_atomically(self._path(result.model_id),
                             json.dumps({"results": {k: asdict(v) for k, v in results.items()}}, indent=1))


class _Running:
    """A job this process runs: its state (written to the shared store as it
    changes), the lease owner name, and the cancel flag the measurement polls."""

    def __init__(self, job: Job, entries: list[ModelEntry], config: SpeedConfig, skip_measured: bool) -> None:
        self.job = job
        self.entries = entries
        self.config = config
        self.skip_measured = skip_measured
        self.owner = new_owner()
        self.cancel = threading.Event()


class SpeedJobs:
    """Speed jobs shared by every worker process through the state store
    (app/state_store.py): the job table, so any worker answers for any job;
    the one-measurement-at-a-time rule, a lease that the worker running a job
    holds and renews (two overlapping runs would spoil each other's timings);
    and cancellation, a flag any worker may set that the running worker's
    heartbeat polls. The measurement runs in a thread of the worker that
    accepted the POST, never on the event loop."""

    def __init__(self, store: SpeedStore, state: StateStore, device: torch.device, time_budget_s: float,
                 export_dir: Path | None = None) -> None:
        self.store = store
        self.state = state
        self.export_dir = export_dir  # ONNX exports of the constant-filled nets
        self.device = device
        self.time_budget_s = time_budget_s
        self._local: dict[str, _Running] = {}  # the jobs this process runs
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def refuse_while_running(self) -> None:
        """Conflict now if any worker runs a measurement (``submit`` checks again, atomically)."""
        holder = self.state.holder(LEASE)
        if holder is not None:
            raise _busy(holder[1] or holder[0])

    def submit(self, kind: Literal["model", "all"], entries: list[ModelEntry], params: SpeedParams,
               skip_measured: bool = False) -> Job:
        """Start a job; Conflict while another runs in any worker."""
        config = params.config(self.time_budget_s)
        try:
            validate_config(config, self.device)
        except SpeedError as exc:
            raise InvalidParameter(str(exc) + ".") from None
        job = Job(id=uuid.uuid4().hex[:16], kind=kind, status="queued", device=str(self.device),
                  models=[e.id for e in entries], params=params,
                  progress=JobProgress(model_count=len(entries)), created_at=_now())
        running = _Running(job, entries, config, skip_measured)
        holder = self.state.claim(LEASE, running.owner, LEASE_TTL_S, value=job.id,
                                  then=(KIND, job.id, job.model_dump(mode="json")))
        if holder is not None:
            raise _busy(holder)
        self.state.keep_newest(KIND, JOB_HISTORY)
        thread = threading.Thread(target=self._work, args=(running,), name="convzoo-speed", daemon=True)
        with self._lock:
            self._local[job.id] = running
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return job.model_copy(deep=True)

    def get(self, job_id: str) -> Job:
        with self.state.snapshot():
            body, holder = self.state.get(KIND, job_id), self.state.holder(LEASE)
        if body is None:
            raise NotFound(f"No speed job {job_id!r}; the last {JOB_HISTORY} jobs are kept.")
        return _seen_alive(Job.model_validate(body), holder)

    def jobs(self) -> JobList:
        with self.state.snapshot():
            bodies, holder = self.state.newest(KIND, JOB_HISTORY), self.state.holder(LEASE)
        jobs = [_seen_alive(Job.model_validate(body), holder) for body in bodies]
        jobs.sort(key=lambda job: job.created_at, reverse=True)
        active = [job.id for job in jobs if job.status in ("queued", "running")]
        return JobList(jobs=jobs, running=active[0] if active else None)

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop at its next run, whichever worker runs it; a
        finished job is returned as it is."""
        job = self.get(job_id)
        if job.status in ("queued", "running"):
            self.state.put(CANCEL_KIND, job_id, {"requested_at": _now()})
            with self._lock:
                if job_id in self._local:
                    self._local[job_id].cancel.set()
        return self.get(job_id)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel what this process runs and wait for it (app shutdown)."""
        with self._lock:
            for running in self._local.values():
                running.cancel.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout_s)

    # The job's thread.

    def _work(self, running: _Running) -> None:
        job = running.job

        def poll_cancel() -> None:
            if self.state.get(CANCEL_KIND, job.id) is not None:
                running.cancel.set()

        try:
            with Heartbeat(self.state, LEASE, running.owner, LEASE_TTL_S, HEARTBEAT_S, tick=poll_cancel):
                self._run(running)
        except Exception as exc:  # never let one job kill the worker
            log.exception("speed job %s failed", job.id)
            job.status, job.error = "failed", str(exc) or type(exc).__name__
        finally:
            if job.status in ("queued", "running"):
                job.status = "done"
            job.finished_at = _now()
            # The final state and the lease go in one transaction: no reader sees a
            # finished job still holding the lease, or a free lease with a running job.
            self.state.release(LEASE, running.owner, then=(KIND, job.id, job.model_dump(mode="json")))
            with self._lock:
                self._local.pop(job.id, None)

    def _save(self, running: _Running) -> None:
        self.state.put(KIND, running.job.id, running.job.model_dump(mode="json"))

    def _run(self, running: _Running) -> None:
        job, config = running.job, running.config
        job.status, job.started_at = "running", _now()
        self._save(running)
        count = len(running.entries)
        for index, entry in enumerate(running.entries):
            if running.cancel.is_set():
                break

            def progress(fraction: float, batch_size: int, index: int = index, entry: ModelEntry = entry) -> None:
                job.progress = JobProgress(fraction=(index + fraction) / count, model_index=index + 1,
                                           model_count=count, current_model=entry.id, batch_size=batch_size)
                self._save(running)

            progress(0.0, config.batch_sizes[0])
            if running.skip_measured and self.store.has(entry, config):
                job.outcomes.append(ModelOutcome(model_id=entry.id, status="skipped"))
                continue
            try:
                result = measure(entry, self.device, config, progress=progress, cancel=running.cancel,
                                 export_dir=self.export_dir)
            except SpeedCancelled:
                job.outcomes.append(ModelOutcome(model_id=entry.id, status="cancelled"))
                break
            except Exception as exc:  # one model failing must not end "measure all"
                log.warning("measuring %s failed: %s", entry.id, exc)
                job.outcomes.append(ModelOutcome(model_id=entry.id, status="failed", error=str(exc)))
                if job.kind == "model":
                    job.status, job.error = "failed", str(exc)
                continue
            self.store.save(result)
            job.outcomes.append(ModelOutcome(model_id=entry.id, status="measured"))
            if job.kind == "model":
                job.result = result
            self._save(running)
        if running.cancel.is_set():
            job.status = "cancelled"
        elif job.status == "running":
            job.status = "done"
            job.progress.fraction = 1.0


def _seen_alive(job: Job, holder: tuple[str, str | None] | None) -> Job:
    """A job left queued or running without its lease: the worker process
    running it stopped (crashed or was killed) before it could say so.
    ``holder`` must be read in the same snapshot as ``job`` (a job that ends
    drops its lease and writes its final state in one transaction)."""
    if job.status in ("queued", "running") and (holder is None or holder[1] != job.id):
        job.status, job.error = "failed", "The worker process running this measurement stopped."
    return job


def _busy(job_id: str) -> Conflict:
    return Conflict(f"A speed measurement is already running (job {job_id}); wait for it or cancel it first.")


def create_speed_jobs(cache_dir: Path, state: StateStore, device: torch.device, time_budget_s: float) -> SpeedJobs:
    return SpeedJobs(SpeedStore(cache_dir, device_info(device)), state, device, time_budget_s, cache_dir / "onnx")
