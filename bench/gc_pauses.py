"""Garbage-collection pauses in the web process: model pages viewed one after
another (each model analysed beforehand, so every view reads its analysis from
disk, keeps it in memory and renders its rows: what the pages under
bench/warmup.py and bench/load.py do), with CPython's default thresholds and
with the app's (app/main.py's tune_garbage_collection: start-up objects
frozen, GC_THRESHOLDS). Each setting runs in fresh processes, alternating;
``gc.callbacks`` times every collection. Prints a table (medians over the
repeats) and writes bench/results/gc_pauses.json.

    PYTHONPATH=$PWD python bench/gc_pauses.py [--models 150] [--passes 3] [--repeats 2] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.analysis_cache import AnalysisCache
from app.config import Settings
from app.main import create_app
from models.analysis import AnalysisError
from models.registry import list_models

DEFAULT_THRESHOLDS = (700, 10, 10)  # CPython's


def sample(cache_dir: Path, count: int) -> list[str]:
    """``count`` catalog models (seed 0) analysed into ``cache_dir`` (those that can be)."""
    cache = AnalysisCache(cache_dir)
    entries = list_models()
    random.Random(0).shuffle(entries)
    chosen = []
    for entry in entries:
        if len(chosen) == count:
            break
        try:
            cache.get(entry)
        except AnalysisError:
            continue
        chosen.append(entry.id)
    return chosen


def views(cache_dir: Path, model_ids: list[str], passes: int, setting: str) -> dict:
    """In this (fresh) process: every model page ``passes`` times (and / every third view
    of the first pass), timing each view and each collection."""
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - started[0]) * 1000))

    latencies = []
    with TestClient(create_app(Settings(cache_dir=cache_dir, warm_cache=False, device="cpu"))) as client:
        if setting == "default":  # undo the app's tuning
            gc.unfreeze()
            gc.set_threshold(*DEFAULT_THRESHOLDS)
        client.get("/")  # templates compiled, as in a process that has served a page
        gc.callbacks.append(timed)
        start = time.perf_counter()
        for round_ in range(passes):
            for index, model_id in enumerate(model_ids):
                urls = [f"/models/{model_id}"] + (["/"] if round_ == 0 and index % 3 == 2 else [])
                for url in urls:
                    began = time.perf_counter()
                    assert client.get(url).status_code == 200, url
                    latencies.append((time.perf_counter() - began) * 1000)
        wall = time.perf_counter() - start
        gc.callbacks.remove(timed)
    latencies.sort()
    return {"wall_s": wall, "views": len(latencies), "p50_ms": latencies[len(latencies) // 2],
            "p95_ms": latencies[int(len(latencies) * 0.95)], "p99_ms": latencies[int(len(latencies) * 0.99)],
            "max_ms": latencies[-1], "collections": len(pauses),
            "full_collections": sum(1 for generation, _ in pauses if generation == 2),
            "gc_s": sum(ms for _, ms in pauses) / 1000, "longest_pause_ms": max((ms for _, ms in pauses), default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=150)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=None, help="analysis cache to reuse (default: a fresh one)")
    parser.add_argument("--views-only", default=None, help="(internal) one process' views with this setting, as JSON")
    parser.add_argument("--ids", default="", help="(internal) the models, comma-separated")
    args = parser.parse_args()
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="convzoo-gc-"))
    if args.views_only:
        print(json.dumps(views(cache_dir, args.ids.split(","), args.passes, args.views_only)), flush=True)
        return
    began = time.perf_counter()
    model_ids = sample(cache_dir, args.models)
    print(f"{len(model_ids)} models analysed into {cache_dir} in {time.perf_counter() - began:.0f} s")
    runs: dict[str, list[dict]] = {"default": [], "tuned": []}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for setting in runs:
            out = subprocess.run([sys.executable, __file__, "--views-only", setting, "--ids", ",".join(model_ids),
                                  "--passes", str(args.passes), "--cache-dir", str(cache_dir)],
                                 capture_output=True, text=True, check=True).stdout
            runs[setting].append(json.loads(out.strip().splitlines()[-1]))
    load.append(os.getloadavg()[0])
    summary = {setting: {key: statistics.median(run[key] for run in found) for key in found[0]}
               for setting, found in runs.items()}
    print(f"\n{summary['default']['views']:.0f} page views per run, median of {args.repeats} runs per setting "
          f"(load average {load[0]:.1f}-{load[1]:.1f})")
    print(f"{'setting':9} {'wall s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'GCs':>6} "
          f"{'full':>5} {'GC s':>6} {'longest ms':>10}")
    for setting, row in summary.items():
        print(f"{setting:9} {row['wall_s']:7.1f} {row['p50_ms']:7.0f} {row['p95_ms']:7.0f} {row['p99_ms']:7.0f} "
              f"{row['max_ms']:7.0f} {row['collections']:6.0f} {row['full_collections']:5.0f} {row['gc_s']:6.1f} "
              f"{row['longest_pause_ms']:10.0f}")
    path = Path(__file__).parent / "results" / "gc_pauses.json"
    path.write_text(json.dumps({"models": model_ids, "passes": args.passes, "repeats": args.repeats,
                                "load_average": load, "summary": summary, "runs": runs}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
