"""The model page alone, for nets with the largest layer tables: its first view
in a fresh web process (the analysis read from disk, the rows and formulas
built, the page rendered, and whatever it waits for: what most views under
bench/load.py cost, each model being viewed once or twice) and a repeat view
(the analysis in memory), median over a few processes. Analyses, input rules
and inference forms are worked out once beforehand (kept in --cache-dir), so
the pool has nothing left to do. Prints a table and writes
bench/results/model_page.json.

    PYTHONPATH=$PWD python bench/model_page.py [--cache-dir DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

MODELS = ["nasnetalarge", "timm-vit_giant_patch14_224", "densenet201", "timm-mvitv2_base", "timm-eva02_base_patch14_224",
          "inception_v3", "resnet50", "alexnet"]
WARM_TEMPLATES = "squeezenet1_0"


def views(cache_dir: Path) -> dict[str, tuple[float, float, int]]:
    """In this (fresh) process: each model's first and repeat view in seconds, and its bytes."""
    found = {}
    with TestClient(create_app(Settings(cache_dir=cache_dir, warm_cache=False, device="cpu"))) as client:
        client.get(f"/models/{WARM_TEMPLATES}")  # the page's templates compiled, as in a process that has served a page
        for model_id in MODELS:
            start = time.perf_counter()
            response = client.get(f"/models/{model_id}")
            first = time.perf_counter() - start
            start = time.perf_counter()
            assert response.status_code == 200 and client.get(f"/models/{model_id}").status_code == 200
            found[model_id] = (first, time.perf_counter() - start, len(response.content))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="analysis cache to reuse (default: a fresh one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "model_page.json")
    parser.add_argument("--views-only", action="store_true", help="(internal) one process' views, as JSON")
    args = parser.parse_args()
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="convzoo-model-page-"))
    if args.views_only:
        print(json.dumps(views(cache_dir)), flush=True)  # before shutdown, which has aborted now and then
        return
    with TestClient(create_app(Settings(cache_dir=cache_dir, warm_cache=False, device="cpu"))) as client:
        for model_id in [*MODELS, WARM_TEMPLATES]:  # analysis, input rule and inference form, waited for
            client.get(f"/api/models/{model_id}")
        counts = {m: len(client.get(f"/api/models/{m}/layers").json()["layers"]) for m in MODELS}
    runs = [json.loads(subprocess.run(
        [sys.executable, __file__, "--views-only", "--cache-dir", str(cache_dir)], capture_output=True,
        text=True).stdout.strip().splitlines()[-1]) for _ in range(args.repeats)]
    rows = [{"model": m, "layers": counts[m], "first_ms": round(statistics.median(r[m][0] for r in runs) * 1000, 1),
             "repeat_ms": round(statistics.median(r[m][1] for r in runs) * 1000, 1), "bytes": runs[0][m][2]}
            for m in MODELS]
    load = os.getloadavg()[0]
    print(f"{'model':32} {'layers':>6} {'first view ms':>14} {'repeat ms':>10} {'bytes':>10}   (load average {load:.2f})")
    for row in rows:
        print(f"{row['model']:32} {row['layers']:>6} {row['first_ms']:>14} {row['repeat_ms']:>10} {row['bytes']:>10}")
    out = args.out
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"repeats": args.repeats, "load_average_1min": load, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
