"""Load run: many clients at once against a real server on loopback.

Starts `convzoo serve --workers N` in a subprocess (its own cache directory,
the catalog warmed first), then runs M concurrent clients for a bounded time
and request count with a mix of page views, per-layer analyses across the
whole catalog (some at other resolutions: the first request for a model and
resolution is a cold analysis, reported apart as "layers (cold)"), compare
calls and predictions on real photos. Reports p50/p95/p99 per endpoint,
status counts, errors (a 5xx other than 503 `busy`, or no answer), and the
RSS of the server's whole process tree (workers and analysis processes) at
start, peak and end of each round; a second round on the same server shows
whether memory keeps growing. Prints a table and writes
bench/results/load.json (1 worker) or bench/results/load-<N>-workers.json.

    .venv/bin/python bench/load.py [--workers 1] [--clients 16] [--seconds 180] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def results_path(workers: int) -> Path:
    return RESULTS / ("load.json" if workers == 1 else f"load-{workers}-workers.json")

RESOLUTIONS = [None, None, None, 128, 160, 192, 256, 320]


def sample_images() -> list[tuple[str, bytes]]:
    import matplotlib.cbook
    import skimage

    data = Path(skimage.__file__).parent / "data"
    paths = [data / "chelsea.png", data / "coffee.png", data / "astronaut.png", data / "rocket.jpg",
             Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))]
    return [(p.name, p.read_bytes()) for p in paths]


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children + [d for c in children for d in _descendants(c)]


def rss_bytes(pid: int) -> int:
    """RSS of ``pid`` and every process under it (uvicorn's workers, the analysis pools)."""
    total = 0
    for process in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Server:
    """`convzoo serve --workers N` on a free loopback port with a fresh cache directory."""

    def __init__(self, workers: int = 1, **env_overrides: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CONVZOO_CACHE_DIR": tempfile.mkdtemp(prefix="convzoo-load-"), "CONVZOO_DEVICE": "cpu",
               "PYTHONPATH": str(ROOT), **env_overrides}
        self.cache_dir = env["CONVZOO_CACHE_DIR"]
        self.log = Path(self.cache_dir) / "server.log"  # read back when a request fails
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(workers)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def tracebacks(self, limit: int = 3) -> list[str]:
        """The server's last few tracebacks (what a 500 was)."""
        text = self.log.read_text(errors="replace")
        return [block[:3000] for block in text.split("Traceback (most recent call last):")[1:]][-limit:]

    def wait_ready(self, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                warmup = httpx.get(self.base + "/api/health", timeout=5).json()["warmup"]
                if warmup["total"] and not warmup["running"]:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError("server did not finish its warm-up in time")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def run_round(base: str, pid: int, clients: int, seconds: float, max_requests: int, model_ids: list[str],
              images: list[tuple[str, bytes]], seed: int) -> dict:
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    failures: list[str] = []
    lock = threading.Lock()
    sent = [0]
    analysed: set[tuple[str, int]] = set()  # (model, resolution) asked for once: the next asks are not cold
    stop_at = time.monotonic() + seconds
    rss = {"start": rss_bytes(pid), "peak": rss_bytes(pid)}
    load_start = os.getloadavg()[0]  # the machine is shared: every figure is read against this

    def pick(rng: random.Random) -> tuple[str, str, dict]:
        model_id = rng.choice(model_ids)
        roll = rng.random()
        if roll < 0.30:
            resolution = rng.choice(RESOLUTIONS)
            if resolution is None:  # the model's own size: analysed by the warm-up
                return "layers", f"/api/models/{model_id}/layers", {}
            with lock:
                cold = (model_id, resolution) not in analysed
                analysed.add((model_id, resolution))
            return "layers (cold)" if cold else "layers", f"/api/models/{model_id}/layers?resolution={resolution}", {}
        if roll < 0.50:
            label, page = rng.choice([
                ("page /", "/"), ("page /models/{id}", f"/models/{model_id}"),
                ("page /charts", "/charts/accuracy"), ("page /lab", "/lab"),
                ("page /compare", f"/compare?models={model_id},{rng.choice(model_ids)}"),
            ])
            return label, page, {}
        if roll < 0.65:
            ids = ",".join(rng.sample(model_ids, rng.randint(2, 6)))
            return "compare", f"/api/compare?models={ids}", {}
        if roll < 0.70:
            return "catalog", "/api/models", {}
        name, data = rng.choice(images)
        return "predict", "/api/predict", {"files": {"file": (name, data)}}

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        with httpx.Client(base_url=base, timeout=60) as http:
            while time.monotonic() < stop_at:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                label, url, extra = pick(rng)
                start = time.perf_counter()
                try:
                    response = http.post(url, **extra) if extra else http.get(url)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status = 0
                    with lock:
                        failures.append(f"{url}: {type(exc).__name__}")
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies[label].append(elapsed)
                    statuses[label][status] += 1

    def sample_memory() -> None:
        while time.monotonic() < stop_at:
            rss["peak"] = max(rss["peak"], rss_bytes(pid))
            time.sleep(0.25)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    sampler = threading.Thread(target=sample_memory, daemon=True)
    started = time.monotonic()
    sampler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    duration = time.monotonic() - started
    rss["end"] = rss_bytes(pid)
    endpoints = {}
    for label, values in sorted(latencies.items()):
        codes = dict(statuses[label])
        # A 4xx is an answer (a net that can't take a resolution answers 422);
        # a 5xx other than 503 busy, or no answer at all, is an error.
        errors = sum(n for code, n in codes.items() if code == 0 or (code >= 500 and code != 503))
        endpoints[label] = {
            "requests": len(values), "p50_ms": percentile(values, 0.50), "p95_ms": percentile(values, 0.95),
            "p99_ms": percentile(values, 0.99), "mean_ms": statistics.fmean(values), "statuses": codes,
            "busy_503": codes.get(503, 0), "errors": errors,
        }
    return {"seconds": duration, "requests": sum(len(v) for v in latencies.values()), "endpoints": endpoints,
            "rss_bytes": rss, "transport_failures": failures[:20],
            "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (convzoo serve --workers)")
    parser.add_argument("--analysis-processes", type=int, default=None,
                        help="analysis processes per worker (default: convzoo serve's, the cores / workers)")
    args = parser.parse_args()

    images = sample_images()
    processes = args.analysis_processes or max(1, (os.cpu_count() or 1) // args.workers)
    server = Server(args.workers, CONVZOO_ANALYSIS_PROCESSES=str(processes))
    try:
        server.wait_ready()
        model_ids = [m["id"] for m in httpx.get(server.base + "/api/models", timeout=60).json()["models"]]
        rounds = [run_round(server.base, server.process.pid, args.clients, args.seconds, args.max_requests,
                            model_ids, images, seed) for seed in range(args.rounds)]
    finally:
        server.stop()

    for number, result in enumerate(rounds, 1):
        rss = result["rss_bytes"]
        print(f"\nround {number}: {args.workers} worker(s), {result['requests']} requests in {result['seconds']:.0f} s "
              f"from {args.clients} "
              f"clients; server RSS start {rss['start'] / 1e6:.0f} MB, peak {rss['peak'] / 1e6:.0f} MB, "
              f"end {rss['end'] / 1e6:.0f} MB")
        print(f"{'endpoint':18s} {'requests':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'503':>5s} {'errors':>6s}")
        for label, e in result["endpoints"].items():
            print(f"{label:18s} {e['requests']:8d} {e['p50_ms']:8.1f} {e['p95_ms']:8.1f} {e['p99_ms']:8.1f} "
                  f"{e['busy_503']:5d} {e['errors']:6d}")
    path = results_path(args.workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"workers": args.workers, "analysis_processes": processes,
                                "clients": args.clients, "seconds": args.seconds,
                                "cpus": os.cpu_count(), "rounds": rounds}, indent=1))
    print(f"\nwrote {path}")
    if any(e["errors"] for r in rounds for e in r["endpoints"].values()):
        for traceback in server.tracebacks():
            print("\nserver traceback:\n" + traceback)
        sys.exit(1)


if __name__ == "__main__":
    main()
