"""Cached against cold answers over HTTP, for the models of bench/analysis.py
and a few timm ones.

Cold: the first GET /api/models/{id}/layers of an app on an empty cache
directory (build on meta, trace, write the cache file, build the rows and
serialise them). Cached: later GETs of the same address (the JSON bytes kept
from the first answer), once the app's start-up work is done (the
model's facts, the default predictor's load, the pool's processes starting). Through FastAPI's TestClient, in one process. Prints
a table and writes bench/results/http_cache.json; the goal is cached <= cold / 5.

    .venv/bin/python bench/http_cache.py [--repeats 9] [MODEL ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402

MODELS = ["vgg16", "resnet50", "googlenet", "mobilenet_v2", "densenet121", "vit_b_16", "timm-convnext_tiny",
          "timm-efficientnet_b0"]
RESULTS = Path(__file__).parent / "results" / "http_cache.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    rows = []
    for model_id in args.models:
        colds, cached = [], []
        for _ in range(3):  # a fresh app and cache directory each time: cold means cold
            settings = Settings(cache_dir=Path(tempfile.mkdtemp(prefix="convzoo-http-")), warm_cache=False, device="cpu")
            with TestClient(create_app(settings)) as client:
                client.get("/api/models/lenet5/layers")  # the process and app warmed on another net
                from app.zoo import routes
                routes._LAYERS_BYTES.clear()
                start = time.perf_counter()
                assert client.get(f"/api/models/{model_id}/layers").status_code == 200
                colds.append((time.perf_counter() - start) * 1000)
                # The model's facts (input rule, inference form) are worked out in the analysis pool after its
                # first answer; wait for them, so that the cached timings measure the cached path and not a
                # pool process starting (importing torch) beside it on the same cores.
                assert client.get(f"/api/models/{model_id}").status_code == 200
                while client.get("/api/predict/worker").json()["preparing"]:  # the default model loading at start
                    time.sleep(0.2)
                time.sleep(3)  # the pool's processes finish starting (spawned: each imports torch)
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    client.get(f"/api/models/{model_id}/layers")
                    cached.append((time.perf_counter() - start) * 1000)
        row = {"model": model_id, "cold_ms": statistics.median(colds), "cached_ms": statistics.median(cached)}
        row["cached_vs_cold"] = row["cached_ms"] / row["cold_ms"]
        rows.append(row)
        print(f"{model_id:24s} cold {row['cold_ms']:8.1f} ms  cached {row['cached_ms']:6.2f} ms  "
              f"cached/cold {row['cached_vs_cold']:.3f}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=1))
    print(f"medians; goal cached/cold <= 0.2; wrote {RESULTS}")


if __name__ == "__main__":
    main()
