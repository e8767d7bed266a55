"""How long finding a model's input rule takes (models/resolution.py): the smallest
resolution it takes, found by a dozen meta traces, once per model and library versions
(then read from the cache directory). Median of cold runs, each in a cleared memo.
Prints a table and writes bench/results/input_rule.json.

    .venv/bin/python bench/input_rule.py [--repeats 3] [MODEL ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.registry import get_entry  # noqa: E402
from models.resolution import resolution_rule  # noqa: E402

DEFAULT = ["vgg16", "resnet50", "inception_v3", "vit_b_16", "swin_t", "efficientnet_b7", "lenet5"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("models", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    resolution_rule(get_entry("alexnet_paper"))  # warm the process up on an unrelated net
    rows = []
    for model_id in args.models:
        entry = get_entry(model_id)
        times = []
        for _ in range(args.repeats):
            resolution_rule.cache_clear()
            start = time.perf_counter()
            rule = resolution_rule(entry)
            times.append((time.perf_counter() - start) * 1000)
        rows.append({"model": model_id, "median_ms": round(statistics.median(times), 1), "smallest": rule.smallest,
                     "only": rule.only, "multiple_of": rule.multiple_of})
    print(f"{'model':<18}{'median ms':>10}{'smallest':>10}{'only':>6}{'multiple':>10}")
    for r in rows:
        print(f"{r['model']:<18}{r['median_ms']:>10}{r['smallest']:>10}{str(r['only']):>6}{str(r['multiple_of']):>10}")
    out = Path(__file__).parent / "results" / "input_rule.json"
    out.write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
