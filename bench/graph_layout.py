"""Graphviz dot's layout time of whole (unfolded) graphs, the graph view's
``graph.svg``: with the settings it uses (big graphs' passes capped,
app/zoo/graph.py BIG_GRAPH_ATTRIBUTES) and with dot's defaults, each run
stopped at --cap seconds. Median of repeats; prints a table and writes
bench/results/graph_layout.json.

    .venv/bin/python bench/graph_layout.py [--repeats 3] [--cap 60] [MODEL ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODELS = ["resnet50", "googlenet", "densenet121"]
RESULTS = Path(__file__).parent / "results" / "graph_layout.json"


def dot_seconds(source: str, cap: float) -> float | None:
    """Wall seconds of ``dot -Tsvg`` on ``source``; None past ``cap``."""
    start = time.perf_counter()
    try:
        subprocess.run([shutil.which("dot"), "-Tsvg"], input=source, capture_output=True, text=True, timeout=cap,
                       check=True)
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - start


def main() -> None:
    from app.analysis_cache import AnalysisCache
    from app.zoo import graph as graph_module
    from models.registry import get_entry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cap", type=float, default=60)
    args = parser.parse_args()
    cache = AnalysisCache(Path(tempfile.mkdtemp(prefix="convzoo-bench-layout-")))
    rows = []
    for model_id in args.models:
        graph = graph_module.graph_data(cache, get_entry(model_id))
        used = graph_module.dot_source(graph)
        default = used.replace(f"graph [{graph_module.BIG_GRAPH_ATTRIBUTES}];\n", "")
        times = {}
        for name, source in (("used", used), ("defaults", default)):
            runs = [dot_seconds(source, args.cap) for _ in range(args.repeats if name == "used" else 1)]
            times[name] = None if None in runs else round(statistics.median(runs), 2)
        rows.append({"model": model_id, "nodes": len(graph.nodes), "edges": len(graph.edges),
                     "capped": used != default, "dot_s": times["used"], "dot_defaults_s": times["defaults"]})
        r = rows[-1]
        print(f"{model_id:14} {r['nodes']:>6} nodes {r['edges']:>6} edges  capped {str(r['capped']):5}  "
              f"dot {r['dot_s']} s  defaults {r['dot_defaults_s'] or f'> {args.cap:.0f}'} s", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"cap_s": args.cap, "repeats": args.repeats, "median_of": "repeats (defaults: 1 run)",
                                   "load_average": os.getloadavg(), "rows": rows}, indent=1))
    print(f"wrote {RESULTS}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
