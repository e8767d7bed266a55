"""Speed measurements in the background: one job at a time on a single worker
thread (never the event loop), with progress, cancellation, and results kept
on disk per device so a reload shows them at once."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import uuid
from collections import OrderedDict
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.errors import Conflict, InvalidParameter, NotFound
from models.analysis import input_shape_for
from models.catalog import ModelEntry
from models.speed import SpeedCancelled, SpeedConfig, SpeedError, SpeedResult, measure, validate_config
from models.speed_backends import DeviceInfo, device_info

log = logging.getLogger("convzoo.speed")

JOB_HISTORY = 32
_RESULT = TypeAdapter(SpeedResult)


class SpeedParams(BaseModel):
    """What a caller may choose about a measurement (POST body)."""

    model_config = ConfigDict(extra="forbid")

    batch_sizes: list[int] | None = Field(None, min_length=1, description="Increasing batch sizes; default 1, 2, 4 ... 64")
    resolution: int | None = Field(None, ge=8, le=1024, description="Square input side; default: the model's own")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    channels_last: bool = False
    warmup: int = Field(2, ge=1, le=20, description="Untimed runs per batch size")
    repeats: int = Field(10, ge=1, le=100, description="Timed runs per batch size, at most")
    time_budget_s: float | None = Field(None, gt=0, le=3600, description="Seconds per model, roughly; larger "
                                        "batches that would overrun it are skipped. Default: the server's setting")

    def config(self, default_time_budget_s: float) -> SpeedConfig:
        base = SpeedConfig(time_budget_s=self.time_budget_s or default_time_budget_s)
        return replace(base, batch_sizes=tuple(base.batch_sizes if self.batch_sizes is None else self.batch_sizes), resolution=self.resolution,
                       dtype=self.dtype, channels_last=self.channels_last, warmup=self.warmup,
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
        with self._lock:
            results = self._read(result.model_id)
            results[result_key(result)] = result
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self._path(result.model_id)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"results": {k: asdict(v) for k, v in results.items()}}, indent=1))
            tmp.replace(path)


class _Running:
    """A job's mutable state, touched by the worker and read by requests."""

    def __init__(self, job: Job, entries: list[ModelEntry], config: SpeedConfig, skip_measured: bool) -> None:
        self.job = job
        self.entries = entries
        self.config = config
        self.skip_measured = skip_measured
        self.cancel = threading.Event()


class SpeedJobs:
    def __init__(self, store: SpeedStore, device: torch.device, time_budget_s: float) -> None:
        self.store = store
        self.device = device
        self.time_budget_s = time_budget_s
        self._jobs: OrderedDict[str, _Running] = OrderedDict()
        self._active: _Running | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Running | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, kind: Literal["model", "all"], entries: list[ModelEntry], params: SpeedParams,
               skip_measured: bool = False) -> Job:
        """Queue a job; Conflict while another is queued or running."""
        config = params.config(self.time_budget_s)
        try:
            validate_config(config, self.device)
        except SpeedError as exc:
            raise InvalidParameter(str(exc) + ".") from None
        with self._lock:
            if self._active is not None:
                raise Conflict(f"A speed measurement is already running (job {self._active.job.id}); "
                               "wait for it or cancel it first.")
            job = Job(id=uuid.uuid4().hex[:16], kind=kind, status="queued", device=str(self.device),
                      models=[e.id for e in entries], params=params,
                      progress=JobProgress(model_count=len(entries)), created_at=_now())
            running = _Running(job, entries, config, skip_measured)
            self._active = running
            self._jobs[job.id] = running
            while len(self._jobs) > JOB_HISTORY:
                self._jobs.popitem(last=False)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="convzoo-speed", daemon=True)
                self._thread.start()
            self._queue.put(running)
            return job.model_copy(deep=True)

    def get(self, job_id: str) -> Job:
        with self._lock:
            running = self._jobs.get(job_id)
            if running is None:
                raise NotFound(f"No speed job {job_id!r}; jobs are kept in memory until the server restarts.")
            return running.job.model_copy(deep=True)

    def jobs(self) -> JobList:
        with self._lock:
            jobs = [r.job.model_copy(deep=True) for r in reversed(self._jobs.values())]
            return JobList(jobs=jobs, running=self._active.job.id if self._active else None)

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop at its next run; a finished job is returned as it is."""
        with self._lock:
            running = self._jobs.get(job_id)
            if running is None:
                raise NotFound(f"No speed job {job_id!r}; jobs are kept in memory until the server restarts.")
            running.cancel.set()
        return self.get(job_id)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel what runs and end the worker (app shutdown)."""
        with self._lock:
            if self._active is not None:
                self._active.cancel.set()
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout_s)

    # The worker thread.

    def _work(self) -> None:
        while (running := self._queue.get()) is not None:
            try:
                self._run(running)
            except Exception as exc:  # never let one job kill the worker
                log.exception("speed job %s failed", running.job.id)
                self._update(running, status="failed", error=str(exc) or type(exc).__name__)
            finally:
                with self._lock:
                    job = running.job
                    if job.status in ("queued", "running"):
                        job.status = "done"
                    job.finished_at = _now()
                    self._active = None

    def _update(self, running: _Running, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(running.job, name, value)

    def _run(self, running: _Running) -> None:
        job, config = running.job, running.config
        self._update(running, status="running", started_at=_now())
        count = len(running.entries)
        for index, entry in enumerate(running.entries):
            if running.cancel.is_set():
                break

            def progress(fraction: float, batch_size: int, index: int = index, entry: ModelEntry = entry) -> None:
                with self._lock:
                    job.progress = JobProgress(fraction=(index + fraction) / count, model_index=index + 1,
                                               model_count=count, current_model=entry.id, batch_size=batch_size)

            progress(0.0, config.batch_sizes[0])
            if running.skip_measured and self.store.has(entry, config):
                self._outcome(running, ModelOutcome(model_id=entry.id, status="skipped"))
                continue
            try:
                result = measure(entry, self.device, config, progress=progress, cancel=running.cancel)
            except SpeedCancelled:
                self._outcome(running, ModelOutcome(model_id=entry.id, status="cancelled"))
                break
            except Exception as exc:  # one model failing must not end "measure all"
                log.warning("measuring %s failed: %s", entry.id, exc)
                self._outcome(running, ModelOutcome(model_id=entry.id, status="failed", error=str(exc)))
                if job.kind == "model":
                    self._update(running, status="failed", error=str(exc))
                continue
            self.store.save(result)
            self._outcome(running, ModelOutcome(model_id=entry.id, status="measured"))
            if job.kind == "model":
                self._update(running, result=result)
        with self._lock:
            if running.cancel.is_set():
                job.status = "cancelled"
            elif job.status == "running":
                job.status = "done"
                job.progress.fraction = 1.0

    def _outcome(self, running: _Running, outcome: ModelOutcome) -> None:
        with self._lock:
            running.job.outcomes.append(outcome)


def create_speed_jobs(cache_dir: Path, device: torch.device, time_budget_s: float) -> SpeedJobs:
    return SpeedJobs(SpeedStore(cache_dir, device_info(device)), device, time_budget_s)
