"""ONNX uploads: counts against the zoo's, and the time to analyse each.

For each model: torchvision's architecture exported with torch.onnx.export
(random weights, TorchScript exporter, opset 17), then the upload's work
(app.custom.data.add_onnx: SHA-256, protobuf parse and checks, weights
stripped, the graph on meta, the zoo's trace, the store written) cold -- each
repeat in a cleared meta memo, an empty store and an empty analysis cache --
and again for the same file (the store answers). MACs and parameters beside
the zoo's analysis of the same model; parameters differ by what the exporter
folded (batch norm into convolutions). Prints a table and writes
bench/results/custom.json.

    .venv/bin/python bench/custom.py [--repeats 3] [MODEL ...]
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

from app.analysis_cache import AnalysisCache  # noqa: E402
from app.custom.data import add_onnx  # noqa: E402
from app.custom.store import CustomStore  # noqa: E402
from models import meta  # noqa: E402
from models.analysis import analyse_entry  # noqa: E402
from models.registry import get_entry  # noqa: E402
from tests.onnx_exports import export_zoo_model, folded_batch_norm_channels  # noqa: E402

MODELS = ["resnet18", "mobilenet_v2", "googlenet", "densenet121", "vit_b_16"]
RESULTS = Path(__file__).parent / "results" / "custom.json"


def fresh() -> tuple[CustomStore, AnalysisCache]:
    directory = Path(tempfile.mkdtemp(prefix="convzoo-bench-custom-"))
    cache = AnalysisCache(directory)
    return CustomStore(directory / "custom", 1 << 30, on_evict=cache.forget), cache


def measure(model_id: str, repeats: int) -> dict:
    data = export_zoo_model(model_id)
    cold, created = [], None
    for _ in range(repeats):
        meta._META_OUTPUTS.clear()
        store, cache = fresh()
        start = time.perf_counter()
        created = add_onnx(store, cache, data)
        cold.append((time.perf_counter() - start) * 1000)
    again = []
    for _ in range(repeats):
        start = time.perf_counter()
        assert add_onnx(store, cache, data).cached
        again.append((time.perf_counter() - start) * 1000)
    zoo = analyse_entry(get_entry(model_id)).totals
    return {
        "model": model_id, "file_bytes": len(data), "zoo_macs": zoo.macs, "onnx_macs": created.macs,
        "macs_ratio": created.macs / zoo.macs, "zoo_params": zoo.params, "onnx_params": created.params,
        "folded_bn_channels": folded_batch_norm_channels(model_id, data),
        "upload_cold_ms": statistics.median(cold), "upload_again_ms": statistics.median(again),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = [measure(model_id, args.repeats) for model_id in args.models]
    print(f"{'model':14} {'zoo MACs':>16} {'ONNX MACs':>16} {'zoo params':>12} {'ONNX params':>12} "
          f"{'folded BN':>9} {'file MB':>8} {'cold ms':>8} {'again ms':>8}")
    for r in rows:
        print(f"{r['model']:14} {r['zoo_macs']:>16,} {r['onnx_macs']:>16,} {r['zoo_params']:>12,} "
              f"{r['onnx_params']:>12,} {r['folded_bn_channels']:>9,} {r['file_bytes'] / 1e6:>8.1f} "
              f"{r['upload_cold_ms']:>8.0f} {r['upload_again_ms']:>8.0f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "repeats": args.repeats, "median_of": "repeats", "rows": rows}, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
