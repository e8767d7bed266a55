"""Page speed: the catalog from a cold cache (it lists 1,456 models without
analysing any), then every page served from the cache (median of a few
requests), the catalog's server-side filters, sorts and pages among them. Prints a table and
writes bench/results/pages.json.

    PYTHONPATH=$PWD python bench/pages.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

PAGES = ["/", "/?family=convnext", "/?q=resnet+50", "/?source=timm&sort=top1&order=desc&page=3",
         "/?params_max=5M&sort=params", "/api/models?family=convnext", "/api/models?source=timm&per_page=50&page=2",
         "/models/timm-convnext_tiny", "/charts/accuracy?family=resnet", "/models/vgg16", "/models/googlenet", "/models/nasnetalarge", "/models/vgg16?resolution=160",
         "/compare?models=vgg16,googlenet,mobilenet_v2", "/charts/accuracy", "/api/models", "/api/charts/accuracy"]
REPEATS = 5


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(cache_dir=Path(tmp), warm_cache=False, device="cpu"))
        client = TestClient(app)
        cache = app.state.analysis_cache
        start = time.perf_counter()
        assert client.get("/").status_code == 200
        cold = time.perf_counter() - start
        rows = [{"page": "/ (cold cache)", "ms": round(cold * 1000, 1), "bytes": None, "traces": cache.traces}]
        for page in PAGES:
            client.get(page)  # first visit may analyse a new resolution or load from disk
            traces = cache.traces
            times, size = [], 0
            for _ in range(REPEATS):
                t = time.perf_counter()
                response = client.get(page)
                times.append(time.perf_counter() - t)
                size = len(response.content)
            assert cache.traces == traces, f"{page} rebuilt an analysis from a warm cache"
            rows.append({"page": page, "ms": round(statistics.median(times) * 1000, 1), "bytes": size, "traces": 0})
    print(f"{'page':48} {'median ms':>10} {'bytes':>10} {'traces':>7}")
    for row in rows:
        print(f"{row['page']:48} {row['ms']:>10} {row['bytes'] or '':>10} {row['traces']:>7}")
    out = Path(__file__).parent / "results" / "pages.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"repeats": REPEATS, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
