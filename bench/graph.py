"""The graph view's cost. Two parts:

1. What recording the graph adds to the analysis trace: CPU time of the meta
   trace with the recorder, and with its hooks made no-ops (the trace as it
   was before the graph), interleaved, median of repeats.
2. The big nets opening folded on the model page: the server's answer for
   the graph JSON and its Graphviz layout (analysis cached), and in Debian's
   Chromium the time from the page's request of the graph to the laid-out,
   coloured SVG in the page (``data-render-ms``) and from navigation start to
   that moment.

Prints tables and writes bench/results/graph.json.

    .venv/bin/python bench/graph.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import analysis as analysis_module  # noqa: E402
from models.analysis import analyse, input_shape_for  # noqa: E402
from models.build import build_on_meta  # noqa: E402
from models.graph import GraphRecorder  # noqa: E402
from models.registry import get_entry  # noqa: E402

TRACE_MODELS = ["vgg16", "resnet50", "googlenet", "mobilenet_v3_large", "densenet121", "vit_b_16", "nasnetalarge"]
BIG_MODELS = ["densenet201", "nasnetalarge", "vit_h_14"]
RESULTS = Path(__file__).parent / "results" / "graph.json"


class _Silent(GraphRecorder):
    """The recorder with its hooks doing nothing: the trace without the graph."""

    def enter(self, row, args):
        pass

    def exit(self, output):
        pass

    def op(self, func, leaves, out, macs):
        pass

    def finish(self, layers):
        return []


def cpu_ms(fn) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1000


def trace_overhead(model_id: str, repeats: int) -> dict:
    entry = get_entry(model_id)
    model, shape = build_on_meta(entry), input_shape_for(entry)
    analyse(model, shape)  # memo warm-up
    with_graph, without = [], []
    for _ in range(repeats):
        with_graph.append(cpu_ms(lambda: analyse(model, shape)))
        analysis_module.GraphRecorder = _Silent
        try:
            without.append(cpu_ms(lambda: analyse(model, shape)))
        finally:
            analysis_module.GraphRecorder = GraphRecorder
    a = analyse(model, shape)
    return {"model": model_id, "nodes": len(a.graph), "trace_cpu_ms": statistics.median(with_graph),
            "trace_cpu_ms_without_graph": statistics.median(without),
            "overhead": statistics.median(with_graph) / statistics.median(without) - 1}


def open_folded(repeats: int) -> list[dict]:
    from fastapi.testclient import TestClient
    from playwright.sync_api import sync_playwright

    from app.config import Settings
    from app.main import create_app
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS, serving

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(cache_dir=Path(tmp), warm_cache=False, device="cpu"))
        client = TestClient(app)
        with serving(app) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for model_id in BIG_MODELS:
                start = time.perf_counter()
                depth = client.get(f"/api/models/{model_id}/graph?depth=1").json()["suggested_depth"]
                first_ms = (time.perf_counter() - start) * 1000  # analysis traced and cached
                json_ms, svg_ms, render_ms, page_ms = [], [], [], []
                for _ in range(repeats):
                    t = time.perf_counter()
                    graph = client.get(f"/api/models/{model_id}/graph?depth={depth}").json()
                    json_ms.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    assert client.get(f"/api/models/{model_id}/graph.svg?depth={depth}").status_code == 200
                    svg_ms.append((time.perf_counter() - t) * 1000)
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.goto(f"{base}/models/{model_id}")
                    page.wait_for_selector("#graph-view[data-ready='1'] svg", timeout=60_000)
                    render_ms.append(float(page.get_attribute("#graph-view", "data-render-ms")))
                    page_ms.append(page.evaluate("performance.now()"))
                    page.close()
                rows.append({"model": model_id, "depth": depth, "nodes": len(graph["nodes"]),
                             "edges": len(graph["edges"]), "first_analysis_ms": first_ms,
                             "json_ms": statistics.median(json_ms), "svg_ms": statistics.median(svg_ms),
                             "render_ms": statistics.median(render_ms), "page_ready_ms": statistics.median(page_ms)})
            browser.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    trace = [trace_overhead(m, args.repeats) for m in TRACE_MODELS]
    print(f"{'model':20s} {'nodes':>6s} {'trace CPU ms':>13s} {'without graph':>14s} {'overhead':>9s}")
    for r in trace:
        print(f"{r['model']:20s} {r['nodes']:6d} {r['trace_cpu_ms']:13.1f} {r['trace_cpu_ms_without_graph']:14.1f} "
              f"{100 * r['overhead']:8.1f}%")
    opened = open_folded(args.repeats)
    print(f"\n{'model':14s} {'depth':>5s} {'nodes':>6s} {'edges':>6s} {'JSON ms':>8s} {'SVG ms':>7s} "
          f"{'render ms':>10s} {'page ms':>8s}")
    for r in opened:
        print(f"{r['model']:14s} {r['depth']:5d} {r['nodes']:6d} {r['edges']:6d} {r['json_ms']:8.1f} "
              f"{r['svg_ms']:7.1f} {r['render_ms']:10.0f} {r['page_ready_ms']:8.0f}")
    print(f"Medians of {args.repeats}. render: from the page's request of the graph to the coloured SVG in it; "
          "page: from navigation start to the same moment (the analysis cached).")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "repeats": args.repeats, "trace": trace, "open_folded": opened,
    }, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
