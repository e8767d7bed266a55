"""Several workers, one truth: a real `convzoo serve --workers 2` on loopback.
Any worker answers for a speed job another accepted, a second measurement is
refused with 409 by every worker while one runs, a cancel reaches the job
from any worker; and the start-up warm-up runs once for all the workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.analysis_cache import AnalysisCache
from app.analysis_pool import AnalysisPool
from app.state_store import StateStore
from app.warmup import Warmup
from models.registry import get_entry

ROOT = Path(__file__).resolve().parents[2]
WORKER = "x-convzoo-worker"
# Several models at a small size: the job runs for seconds, long enough to be seen running.
# (cancelled once seen: a cancel stops it at its next timed run).
LONG_JOB = {"models": ["resnet18", "mobilenet_v2", "googlenet", "densenet121", "regnet_x_400mf"],
            "batch_sizes": [1, 2, 4, 8, 16], "resolution": 64, "warmup": 1, "repeats": 100, "time_budget_s": 3600}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _each_on_its_own_connection(method: str, url: str, count: int = 16, **kwargs) -> list[httpx.Response]:
    """``count`` requests at once, each on a new connection, so the kernel
    spreads them over the workers accepting on the shared socket."""
    with httpx.Client(timeout=60, headers={"Connection": "close"},
                      limits=httpx.Limits(max_connections=count, max_keepalive_connections=0)) as client, \
            ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: client.request(method, url, **kwargs), range(count)))


def _from_both_workers(method: str, url: str, rounds: int = 10, **kwargs) -> list[httpx.Response]:
    """Rounds of simultaneous requests until both workers have answered: the
    kernel's spread is not guaranteed on one round (a busy worker accepts late)."""
    answers: list[httpx.Response] = []
    for _ in range(rounds):
        answers += _each_on_its_own_connection(method, url, **kwargs)
        if len({r.headers[WORKER] for r in answers}) == 2:
            break
    return answers


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "CONVZOO_CACHE_DIR": str(tmp_path_factory.mktemp("workers")), "CONVZOO_WARM_CACHE": "false",
           "CONVZOO_DEVICE": "cpu", "CONVZOO_ANALYSIS_PROCESSES": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, seen = time.monotonic() + 180, set()
        while len(seen) < 2:  # both workers up
            assert time.monotonic() < deadline and process.poll() is None, "the 2-worker server did not start"
            try:
                seen |= {r.headers[WORKER] for r in _each_on_its_own_connection("GET", f"{base}/api/health", 8)}
            except httpx.HTTPError:
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_every_worker_answers_for_the_same_job_and_refuses_a_second(two_workers):
    base = two_workers
    accepted = httpx.post(f"{base}/api/speed/measure-all", json=LONG_JOB, timeout=60)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]

    refused = _from_both_workers("POST", f"{base}/api/models/squeezenet1_1/speed",
                                 json={"batch_sizes": [1], "resolution": 64})
    assert [r.status_code for r in refused] == [409] * len(refused)
    assert all(r.json()["error"]["code"] == "conflict" and job_id in r.json()["error"]["message"] for r in refused)
    assert len({r.headers[WORKER] for r in refused}) == 2

    answers = _from_both_workers("GET", f"{base}/api/jobs/{job_id}")
    assert [r.status_code for r in answers] == [200] * len(answers)
    assert {r.json()["id"] for r in answers} == {job_id}
    assert len({r.headers[WORKER] for r in answers}) == 2  # both workers answered 200

    assert {r.json()["running"] for r in _each_on_its_own_connection("GET", f"{base}/api/jobs", 8)} == {job_id}

    # Cancelled from whichever worker gets the request; every worker then sees it ended.
    assert httpx.post(f"{base}/api/jobs/{job_id}/cancel", timeout=60).status_code == 200
    deadline = time.monotonic() + 120
    while (job := httpx.get(f"{base}/api/jobs/{job_id}", timeout=60).json())["status"] not in ("cancelled", "done"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "cancelled"
    ended = _each_on_its_own_connection("GET", f"{base}/api/jobs/{job_id}", 8)
    assert {r.json()["status"] for r in ended} == {"cancelled"}
    # The lease is free again: the next measurement is accepted (and stopped at once).
    again = httpx.post(f"{base}/api/models/squeezenet1_1/speed", json={"batch_sizes": [1], "resolution": 64},
                       timeout=60)
    assert again.status_code == 202, again.text
    httpx.post(f"{base}/api/jobs/{again.json()['id']}/cancel", timeout=60)


def test_the_warmup_runs_once_for_all_workers(tmp_path):
    """Two workers' warm-ups on one cache directory and store, started together:
    one claims the lease and analyses everything, the other waits and finds it done."""
    entries = [get_entry(i) for i in ("lenet5", "alexnet_paper", "nin", "zfnet")]
    pool = AnalysisPool(1)
    try:
        workers = [Warmup(AnalysisCache(tmp_path, pool=pool), StateStore(tmp_path / "state.sqlite3"))
                   for _ in range(2)]
        barrier = threading.Barrier(2)

        def start(warmup):
            barrier.wait()
            warmup.start(entries=entries)
            warmup.wait(120)

        threads = [threading.Thread(target=start, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        runs = [w.last_run for w in workers if w.last_run is not None]
        assert len(runs) == 1 and runs[0].analysed_now == len(entries)
        assert workers[0].progress == workers[1].progress == runs[0]
        assert not runs[0].running and runs[0].done == len(entries)
    finally:
        pool.shutdown()
