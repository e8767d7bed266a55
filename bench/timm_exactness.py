"""ConvZoo against timm's benchmark table: params and GMACs for every row.

    python bench/timm_exactness.py [--limit N] [--arch NAME ...]

Each row of models/data/timm_benchmark.csv (timm's
benchmark-infer-amp-nchw-pt291-cu128-4090.csv; "timm results tables,
pytorch-image-models commit aa4b585") is analysed at its ``infer_img_size``
(models/timm_exactness.py): params must equal ``param_count`` after rounding
to 2 decimals (the fused inference form for re-parameterisable nets), and
GMACs, reconciled op by op with fvcore's convention, must equal
``infer_gmacs`` within its rounding. Writes bench/results/timm_exactness.json
and bench/results/timm_exactness.md; rows that fail or differ are listed with
the reason or the op responsible.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import timm  # noqa: E402
import torch  # noqa: E402

from models.timm_exactness import check_row  # noqa: E402
from models.timm_zoo import load_benchmark  # noqa: E402

RESULTS = ROOT / "bench" / "results"
NAME = "timm_exactness"


def _markdown(checks: list[dict], totals: dict) -> str:
    lines = [
        "# ConvZoo vs timm's benchmark table",
        "",
        f"timm {timm.__version__}, torch {torch.__version__}; reference: timm's "
        "benchmark-infer-amp-nchw-pt291-cu128-4090.csv (timm results tables, pytorch-image-models commit aa4b585).",
        "",
        "| | rows |",
        "|---|---:|",
        *(f"| {k.replace('_', ' ')} | {v} |" for k, v in totals.items()),
        "",
        "## Rows that fail or still differ",
        "",
        "| arch | img size | params (ConvZoo) | param_count (timm) | GMACs ConvZoo | reconciled | infer_gmacs (timm) | "
        "reason / op responsible |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in checks:
        if c["status"] == "ok" and c["params_equal"] and c["gmacs_equal"]:
            continue
        params = f"{c['params']:,}" if c["params"] is not None else ""
        macs = f"{c['convzoo_macs'] / 1e9:.3f}" if c["convzoo_macs"] is not None else ""
        rec = f"{c['reconciled_macs'] / 1e9:.3f}" if c["reconciled_macs"] is not None else ""
        why = c["reason"] or c["responsible_op"] or ("params differ" if not c["params_equal"] else "")
        lines.append(f"| {c['arch']} | {c['img_size']} | {params} | {c['timm_params_m']} | {macs} | {rec} | "
                     f"{c['timm_gmacs']} | {why} |")
    ops = Counter(op for c in checks for op in c["adjustments"])
    lines += ["", "## Ops reconciled (rows where fvcore's count differs from ConvZoo's)", "",
              "| op | rows |", "|---|---:|", *(f"| {op} | {n} |" for op, n in ops.most_common())]
    return "\n".join(lines) + "\n"


def _write(checks: list[dict], planned: int, seconds: float) -> dict:
    built = [c for c in checks if c["status"] == "ok"]
    totals = {
        "rows": len(checks),
        "analysed": len(built),
        "failed": len(checks) - len(built),
        "params_equal": sum(c["params_equal"] for c in built),
        "reparameterised": sum(c["reparameterised"] for c in built),
        "gmacs_equal_reconciled": sum(c["gmacs_equal"] for c in built),
        "gmacs_equal_before_reconciling": sum(c["gmacs_equal_unreconciled"] for c in built),
        "gmacs_still_differ": sum(not c["gmacs_equal"] for c in built),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{NAME}.json").write_text(json.dumps(
        {"timm": timm.__version__, "torch": torch.__version__, "rows_planned": planned, "seconds": round(seconds, 1),
         "median_row_seconds": statistics.median(c["seconds"] for c in checks), "totals": totals,
         "rows": checks}, indent=1))
    (RESULTS / f"{NAME}.md").write_text(_markdown(checks, totals))
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--arch", nargs="*", default=None, help="only these architectures")
    parser.add_argument("--reverse", action="store_true", help="from the last row (a second process meets the first)")
    parser.add_argument("--name", default="timm_exactness", help="results file name under bench/results")
    parser.add_argument("--merge", nargs="*", default=None,
                        help="combine earlier results files (rows of the same arch and size once) and stop")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = load_benchmark()
    if args.arch:
        rows = [r for r in rows if r.arch in args.arch]
    rows = rows[: args.limit] if args.limit else rows
    if args.reverse:
        rows = rows[::-1]
    global NAME
    NAME = args.name
    if args.merge is not None:
        merged = {}
        for path in args.merge:
            for check in json.loads(Path(path).read_text())["rows"]:
                merged.setdefault((check["arch"], check["img_size"]), check)
        order = {(r.arch, r.img_size): i for i, r in enumerate(load_benchmark())}
        checks = sorted(merged.values(), key=lambda c: order.get((c["arch"], c["img_size"]), 0))
        totals = _write(checks, len(load_benchmark()), sum(c["seconds"] for c in checks))
        for key, value in totals.items():
            print(f"{key:32s} {value}")
        return 0

    checks, start = [], time.perf_counter()
    for i, row in enumerate(rows, 1):
        t = time.perf_counter()
        check = check_row(row).to_dict()
        check["seconds"] = round(time.perf_counter() - t, 3)
        checks.append(check)
        flag = "ok" if check["status"] == "ok" and check["params_equal"] and check["gmacs_equal"] else "DIFF"
        print(f"[{i}/{len(rows)}] {row.arch} @{row.img_size}: {flag} {check['reason'] or check['responsible_op'] or ''}",
              flush=True)
        if i % 100 == 0 or i == len(rows):  # a long run leaves its results behind as it goes
            totals = _write(checks, len(rows), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    print()
    for key, value in totals.items():
        print(f"{key:32s} {value}")
    print(f"{len(checks)} rows in {seconds:.0f} s; wrote {RESULTS / NAME}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
