"""Weights downloads in the background: a small thread pool (network waits,
never the event loop), one job per model at a time, progress readable while
the bytes arrive, and a bounded history of finished jobs."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from app.errors import NotFound, WeightsUnavailable
from app.weights.schemas import FetchJob
from models.catalog import ModelEntry
from models.weights import WeightsError, check_reachable, fetch_weights, weights_status

HISTORY = 64


class WeightsFetches:
    def __init__(self, workers: int = 2, timeout_s: float = 30.0) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None  # made on first use, again after stop()
        self._timeout_s = timeout_s
        self._jobs: OrderedDict[str, FetchJob] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, entry: ModelEntry) -> FetchJob:
        """A job downloading ``entry``'s weights (the running one when there
        is one already), or a finished one when they are already here.

        Raises WeightsUnavailable at once when the model has nothing to
        download or the publisher's host cannot be reached (checked with a
        short TCP connect: blocking, so call it from a worker thread)."""
        with self._lock:
            for job in self._jobs.values():
                if job.model == entry.id and job.status in ("queued", "running"):
                    return job.model_copy()
        status = weights_status(entry)
        if status.available:
            return self._add(FetchJob(id=uuid.uuid4().hex, model=entry.id, status="done", weights=status.status,
                                      fraction=1.0))
        try:
            check_reachable(entry)
        except WeightsError as exc:
            raise WeightsUnavailable(str(exc)) from None
        job = self._add(FetchJob(id=uuid.uuid4().hex, model=entry.id, status="queued", weights=status.status))
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="convzoo-weights")
            self._pool.submit(self._run, job.id, entry)
        return job

    def get(self, job_id: str) -> FetchJob:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(f"No weights download with id {job_id[:40]!r}; it may be older than the last "
                               f"{HISTORY} downloads.")
            return job.model_copy()

    def stop(self) -> None:
        """Drop queued downloads (the app is shutting down; a running one ends
        at its timeout, leaving only its temporary file removed)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _add(self, job: FetchJob) -> FetchJob:
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > HISTORY:
                self._jobs.popitem(last=False)
            return job.model_copy()

    def _update(self, job_id: str, **fields) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs[job_id] = job.model_copy(update=fields)

    def _run(self, job_id: str, entry: ModelEntry) -> None:
        def progress(received: int, total: int | None) -> None:
            self._update(job_id, received_bytes=received, total_bytes=total,
                         fraction=received / total if total else None)

        self._update(job_id, status="running")
        try:
            fetch_weights(entry, progress=progress, timeout_s=self._timeout_s)
        except WeightsError as exc:
            self._update(job_id, status="failed", error=str(exc), weights=weights_status(entry).status)
        except Exception as exc:  # a failed job must say so, whatever went wrong
            self._update(job_id, status="failed", error=f"The download failed ({exc.__class__.__name__}).",
                         weights=weights_status(entry).status)
        else:
            self._update(job_id, status="done", fraction=1.0, weights=weights_status(entry).status)
