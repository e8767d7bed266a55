"""Speed of the inside views on EfficientNet-Lite0 over the app's HTTP API
(an in-process TestClient: routing, the bounded upload, the worker thread,
JSON; no socket): feature maps of every layer the page offers, and each
explanation method on skimage's coffee.png.

Goals (issue 13): feature maps under 300 ms for any layer, Grad-CAM under
1 s, occlusion under 10 s, on this CPU. Each figure is the median of
--repeats requests after one warm-up request. The machine may be shared:
beside wall time each request's CPU time (all threads of this process) is
recorded: on idle cores the wall time lies between CPU / threads and CPU.

    PYTHONPATH=$PWD python bench/inside.py [--repeats 3] [--explain-repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import skimage
import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "inside.json"
MODEL = "efficientnet_lite0"
PHOTO = Path(skimage.__file__).parent / "data" / "coffee.png"


CPU_TIMES: dict[str, list[float]] = {}  # label -> CPU ms of each timed request (all threads of this process)


def timed(send, label: str = "") -> float:
    """Wall ms of one request; its CPU ms go to CPU_TIMES[label]. On a shared
    machine wall time includes waiting for a core; CPU time does not."""
    cpu, started = time.process_time(), time.perf_counter()
    response = send()
    elapsed = (time.perf_counter() - started) * 1000
    CPU_TIMES.setdefault(label, []).append((time.process_time() - cpu) * 1000)
    assert response.status_code == 200, response.text
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="requests per layer (median)")
    parser.add_argument("--explain-repeats", type=int, default=5, help="requests per method (occlusion: min(3, this))")
    args = parser.parse_args()
    photo = PHOTO.read_bytes()
    settings = Settings(cache_dir=Path(tempfile.mkdtemp(prefix="convzoo-bench-")), warm_cache=False, device="cpu")
    with TestClient(create_app(settings)) as client:
        layers = [choice["path"] for choice in client.get(f"/api/models/{MODEL}/inside").json()["map_layers"]]

        def feature_maps(layer: str):
            return lambda: client.post(f"/api/models/{MODEL}/feature-maps", files={"file": ("coffee.png", photo)},
                                       data={"layer": layer})

        # Warm everything first: the prediction worker's start-up (its ONNX export runs in this process and
        # would be counted as CPU time of whatever is measured meanwhile), the eager model, occlusion's runtime.
        timed(lambda: client.post("/api/predict", files={"file": ("coffee.png", photo)}), "warm-up")
        timed(feature_maps(layers[-1]), "warm-up")
        timed(lambda: client.post("/api/explain", files={"file": ("coffee.png", photo)},
                                  data={"method": "occlusion"}), "warm-up")
        per_layer = []
        for layer in layers:
            times = [timed(feature_maps(layer), layer) for _ in range(args.repeats)]
            per_layer.append({"layer": layer, "median_ms": statistics.median(times), "runs_ms": times,
                              "cpu_median_ms": statistics.median(CPU_TIMES[layer])})
        worst = max(per_layer, key=lambda row: row["median_ms"])

        methods = {}
        for method in ("gradcam", "occlusion", "guided_backprop", "deconvnet"):
            def explain(method=method):
                return client.post("/api/explain", files={"file": ("coffee.png", photo)}, data={"method": method})
            timed(explain)
            repeats = min(3, args.explain_repeats) if method == "occlusion" else args.explain_repeats
            times = [timed(explain, method) for _ in range(repeats)]
            methods[method] = {"median_ms": statistics.median(times), "runs_ms": times,
                               "cpu_median_ms": statistics.median(CPU_TIMES[method])}

    median_all = statistics.median(row["median_ms"] for row in per_layer)
    worst_cpu = max(per_layer, key=lambda row: row["cpu_median_ms"])
    threads = torch.get_num_threads()
    print(f"feature maps, {len(per_layer)} layers: median of layer medians {median_all:.0f} ms, "
          f"worst {worst['layer']} {worst['median_ms']:.0f} ms (goal < 300); most CPU: {worst_cpu['layer']} "
          f"{worst_cpu['cpu_median_ms']:.0f} CPU ms over {threads} threads")
    for row in sorted(per_layer, key=lambda r: -r["median_ms"])[:5]:
        print(f"  {row['layer']:28s} {row['median_ms']:8.1f} ms, {row['cpu_median_ms']:8.1f} CPU ms")
    goals = {"gradcam": 1000, "occlusion": 10000}
    for method, row in methods.items():
        goal = f" (goal < {goals[method]})" if method in goals else ""
        print(f"{method:16s} {row['median_ms']:8.0f} ms, {row['cpu_median_ms']:8.0f} CPU ms{goal}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "model": MODEL, "image": "skimage coffee.png (600x400)", "device": "cpu", "cpus": os.cpu_count(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
        "repeats": args.repeats, "load_average": os.getloadavg(),
        "summary": {"layers": len(per_layer), "feature_maps_median_ms": median_all,
                    "feature_maps_worst_layer": worst["layer"], "feature_maps_worst_ms": worst["median_ms"],
                    "feature_maps_most_cpu_layer": worst_cpu["layer"],
                    "feature_maps_most_cpu_ms": worst_cpu["cpu_median_ms"],
                    **{f"{method}_ms": row["median_ms"] for method, row in methods.items()},
                    **{f"{method}_cpu_ms": row["cpu_median_ms"] for method, row in methods.items()}},
        "feature_maps": per_layer, "explain": methods,
        "note": "HTTP through an in-process TestClient; medians; the machine may be shared while measuring",
    }, indent=1))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
