"""The start-up warm-up: the whole catalog analysed cold, and the pages while it runs.

Starts `convzoo serve --workers N` on a fresh cache directory and follows
/api/health until the warm-up is done, while C clients load the catalog (`/`,
`/api/models`) and model pages (`/models/{id}`, labelled by whether the model
was analysed already when asked: a page for one not analysed yet analyses it
first). Then starts the server again on the same cache directory: the warm-up
resumes from the disk cache (with --interrupt-after S the first server is
stopped S seconds in, so the second one finishes the rest). Prints a table and
writes bench/results/warmup.json.

    .venv/bin/python bench/warmup.py [--workers 1] [--clients 4] [--interrupt-after SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import RESULTS, Server, _descendants, percentile, rss_bytes  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time (user + system) the server has used so far: its web process(es),
    and the analysis pool processes (spawned: ``multiprocessing.spawn`` on
    their command line). On a shared machine the wall time of the warm-up
    depends on what else runs; its CPU time does not."""
    used = {"web": 0.0, "analysis": 0.0}
    for process in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            spawned = b"multiprocessing" in Path(f"/proc/{process}/cmdline").read_bytes()
        except OSError:
            continue
        used["analysis" if spawned else "web"] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return used


def warmup_status(base: str) -> dict | None:
    try:
        return httpx.get(f"{base}/api/health", timeout=30).json()["warmup"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def follow(server: Server, clients: int, stop_after: float | None, seed: int) -> dict:
    """Run page clients until the warm-up is done (or ``stop_after`` seconds);
    the warm-up's own figures come from /api/health."""
    started = time.monotonic()
    while (status := warmup_status(server.base)) is None:  # the server is starting
        if time.monotonic() - started > 600:
            raise RuntimeError("server did not start")
        time.sleep(0.2)
    ready_s = time.monotonic() - started
    ids = [m["id"] for m in httpx.get(f"{server.base}/api/models", timeout=60).json()["models"]]
    analysed: set[str] = set()
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    lock = threading.Lock()
    done = threading.Event()
    peak = [rss_bytes(server.process.pid)]

    def client(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        with httpx.Client(base_url=server.base, timeout=120) as http:
            while not done.is_set():
                roll = rng.random()
                if roll < 0.2:
                    label, url = "page /", "/"
                elif roll < 0.4:
                    label, url = "catalog /api/models", "/api/models"
                else:
                    model_id = rng.choice(ids)
                    with lock:
                        ready = model_id in analysed
                    label = "page /models/{id} (analysed)" if ready else "page /models/{id} (not yet)"
                    url = f"/models/{model_id}"
                start = time.perf_counter()
                try:
                    response = http.get(url)
                    code = response.status_code
                    if url == "/api/models" and code == 200:
                        with lock:
                            analysed.update(m["id"] for m in response.json()["models"] if m.get("analysed", True))
                except httpx.HTTPError:
                    code = 0
                with lock:
                    latencies[label].append((time.perf_counter() - start) * 1000)
                    statuses[label][code] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    timeline = []
    first_pass_s = None  # from the server being ready to every model counted (1 s resolution)
    load_at_start = os.getloadavg()[0]
    while True:
        status = warmup_status(server.base) or status
        elapsed = time.monotonic() - started
        timeline.append({"s": round(elapsed, 1), "done": status["done"], "total": status["total"]})
        if first_pass_s is None and status["total"] and status["done"] >= status["total"]:
            first_pass_s = elapsed - ready_s
        peak[0] = max(peak[0], rss_bytes(server.process.pid))
        cpu = cpu_seconds(server.process.pid)
        if (status["total"] and not status["running"]) or (stop_after is not None and elapsed > stop_after):
            break
        time.sleep(1.0)
    done.set()
    for t in threads:
        t.join()
    pages = {label: {"requests": len(v), "p50_ms": percentile(v, 0.5), "p95_ms": percentile(v, 0.95),
                     "p99_ms": percentile(v, 0.99), "statuses": dict(statuses[label]),
                     "errors": sum(n for code, n in statuses[label].items() if code == 0 or code >= 500)}
             for label, v in sorted(latencies.items())}
    return {"server_ready_s": ready_s, "warmup": status, "finished": not status["running"],
            "first_pass_s": first_pass_s, "wall_s": time.monotonic() - started, "timeline": timeline[::5],
            "pages": pages, "peak_rss_bytes": peak[0], "cpu_s": cpu,
            "load_average": {"start": load_at_start, "end": os.getloadavg()[0]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--processes", type=int, default=0, help="analysis processes per worker (0: one per core)")
    parser.add_argument("--interrupt-after", type=float, default=None,
                        help="stop the first server this many seconds in; the second resumes")
    args = parser.parse_args()

    env = {"CONVZOO_ANALYSIS_PROCESSES": str(args.processes)}
    first = Server(args.workers, **env)
    try:
        runs = [follow(first, args.clients, args.interrupt_after, seed=0)]
    finally:
        first.stop()
    second = Server(args.workers, CONVZOO_CACHE_DIR=first.cache_dir, **env)
    try:
        runs.append(follow(second, args.clients, None, seed=1))
    finally:
        second.stop()

    total = runs[-1]["warmup"]["total"]
    print(f"\nwarm-up of {total} models, {args.workers} worker(s), {os.cpu_count()} CPUs, {args.clients} page clients")
    print(f"{'run':<22} {'ready s':>8} {'all models s':>12} {'warm-up s':>10} {'analysed now':>13} {'done':>6} "
          f"{'failed':>7} {'load avg':>9}")
    for name, run in zip(("first start", "restart (resume)"), runs):
        w, first = run["warmup"], run["first_pass_s"]
        print(f"{name:<22} {run['server_ready_s']:8.1f} {'-' if first is None else f'{first:.1f}':>12} "
              f"{w['seconds']:10.1f} {w['analysed_now']:13d} {w['done']:6d} {len(w['failed']):7d} "
              f"{run['load_average']['start']:4.1f}-{run['load_average']['end']:.1f}")
    cold = sum(run["first_pass_s"] if run["first_pass_s"] is not None else run["wall_s"] - run["server_ready_s"]
               for run in runs)
    print(f"every model analysed cold in {cold:.0f} s of warm-up (both runs; 'all models s': until done = total, "
          "before the top-1 sides; 'warm-up s': with them)")
    analysis_cpu = sum(run["cpu_s"]["analysis"] for run in runs)
    print(f"CPU time of the analysis processes, both runs: {analysis_cpu:.0f} s ({analysis_cpu / os.cpu_count():.0f} s "
          f"of wall time on {os.cpu_count()} otherwise idle cores); web process(es): "
          f"{sum(run['cpu_s']['web'] for run in runs):.0f} s")
    for name, run in zip(("first start", "restart (resume)"), runs):
        print(f"\npages while the warm-up runs ({name})")
        print(f"{'page':<32} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
        for label, e in run["pages"].items():
            print(f"{label:<32} {e['requests']:8d} {e['p50_ms']:8.1f} {e['p95_ms']:8.1f} {e['p99_ms']:8.1f} "
                  f"{e['errors']:6d}")
    path = RESULTS / "warmup.json"
    path.write_text(json.dumps({"every_model_cold_s": cold, "analysis_cpu_s": analysis_cpu, "workers": args.workers, "clients": args.clients, "cpus": os.cpu_count(),
                                "processes": args.processes, "interrupt_after_s": args.interrupt_after,
                                "runs": runs}, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
