"""Analysis speed and correctness against torchinfo.

For each model: ConvZoo's cold analysis (build on meta + trace + write the
cache file, each repeat in a cleared memo and an empty cache directory, in a
process already warmed up on an unrelated net), its trace alone, the cached
answer (a fresh cache object reading the file from disk, and a memory hit),
and torchinfo's summary of the same architecture on real CPU tensors (model
built beforehand, not timed). Params and MACs side by side with torchvision's
metadata. Prints a table and writes bench/results/analysis.json.

    .venv/bin/python bench/analysis.py [--repeats 5] [MODEL ...]
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
import warnings
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.analysis_cache import AnalysisCache  # noqa: E402
from models import meta  # noqa: E402
from models.analysis import analyse, input_shape_for  # noqa: E402
from models.build import build_on_meta  # noqa: E402
from models.registry import get_entry  # noqa: E402

MODELS = ["vgg16", "resnet50", "googlenet", "mobilenet_v2", "densenet121", "vit_b_16"]
RESULTS = Path(__file__).parent / "results" / "analysis.json"


def median_ms(fn, repeats: int, setup=None) -> float:
    times = []
    for _ in range(repeats):
        if setup:
            setup()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(model_id: str, repeats: int) -> dict:
    import torchinfo

    entry = get_entry(model_id)
    shape = input_shape_for(entry)
    state = {}

    def fresh():
        meta._META_OUTPUTS.clear()
        state["cache"] = AnalysisCache(Path(tempfile.mkdtemp(prefix="convzoo-bench-")))

    cold_ms = median_ms(lambda: state["cache"].get(entry), repeats, setup=fresh)
    cache = state["cache"]
    analysis = cache.get(entry)
    disk_ms = median_ms(lambda: AnalysisCache(cache.directory.parent).get(entry), repeats)
    memory_ms = median_ms(lambda: cache.get(entry), repeats)
    model = build_on_meta(entry)
    trace_ms = median_ms(lambda: analyse(model, shape), repeats)

    real_build_ms = median_ms(lambda: state.update(real=entry.build().eval()), 3)
    real = state["real"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torchinfo.summary(real, input_size=shape, verbose=0)  # warm-up
        info_ms = median_ms(lambda: state.update(info=torchinfo.summary(real, input_size=shape, verbose=0)),
                            repeats)
    info = state["info"]
    weights = entry.tv_weights
    return {
        "model": model_id,
        "cold_ms": cold_ms, "trace_ms": trace_ms, "disk_cached_ms": disk_ms, "memory_cached_ms": memory_ms,
        "torchinfo_ms": info_ms, "cold_vs_torchinfo": cold_ms / info_ms,
        # From a model id to a summary, torchinfo needs a real model first (random init on the CPU).
        "real_build_ms": real_build_ms, "cold_vs_build_and_torchinfo": cold_ms / (real_build_ms + info_ms),
        "params": analysis.totals.params, "macs": analysis.totals.macs,
        "torchinfo_params": info.total_params, "torchinfo_macs": info.total_mult_adds,
        "meta_params": weights.meta["num_params"] if weights else None,
        "meta_gmacs": weights.meta["_ops"] if weights else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(torch.get_num_threads())
    load_at_start = os.getloadavg()[0]
    analyse(build_on_meta(get_entry("lenet5")), (1, 1, 32, 32))  # process warm-up on an unrelated net
    rows = [measure(model_id, args.repeats) for model_id in args.models]

    head = (f"{'model':14s} {'cold ms':>8s} {'trace ms':>8s} {'disk ms':>8s} {'mem ms':>7s} {'torchinfo':>9s} "
            f"{'ratio':>6s} {'build+ti':>8s} {'ratio2':>6s} | {'params':>11s} {'tv params':>11s} | "
            f"{'GMACs':>8s} {'tv GMACs':>8s} {'torchinfo':>9s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:14s} {r['cold_ms']:8.1f} {r['trace_ms']:8.1f} {r['disk_cached_ms']:8.1f} "
              f"{r['memory_cached_ms']:7.3f} {r['torchinfo_ms']:9.1f} {r['cold_vs_torchinfo']:6.2f} "
              f"{r['real_build_ms'] + r['torchinfo_ms']:8.1f} {r['cold_vs_build_and_torchinfo']:6.2f} | "
              f"{r['params']:11,d} {r['meta_params'] or 0:11,d} | {r['macs'] / 1e9:8.3f} {r['meta_gmacs'] or 0:8.3f} "
              f"{r['torchinfo_macs'] / 1e9:9.3f}")
    print("ratio = cold analysis / torchinfo's summary of a built model; ratio2 = cold analysis / (building the "
          "model with random init + torchinfo), both from a model id. Below 1: ConvZoo is faster. Medians of "
          f"{args.repeats} runs.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "torchvision": torchvision.__version__},
        "repeats": args.repeats, "load_average": {"start": load_at_start, "end": os.getloadavg()[0]}, "rows": rows,
    }, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
