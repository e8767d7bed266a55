"""The speed runner's figures per runtime, side by side: eager PyTorch, eager
channels_last and ONNX Runtime (the same constant weights, exported and
verified), float32 on the CPU, batch 1 and 8, through models/speed.py's
``measure`` exactly as /speed and `convzoo bench --runtime all` run it.

    PYTHONPATH=$PWD python bench/speed_runtimes.py [--models efficientnet_lite0 mobilenet_v3_large resnet50]

Prints a table and writes bench/results/speed_runtimes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `convzoo serve` sets it, before torch loads

import torch  # noqa: E402

from models.registry import get_entry  # noqa: E402
from models.speed import SpeedConfig, measure  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "speed_runtimes.json"
MODELS = ("efficientnet_lite0", "mobilenet_v3_large", "resnet50")
VARIANTS = {"eager": {}, "eager, channels_last": {"channels_last": True}, "ONNX Runtime": {"runtime": "onnxruntime"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--time-budget", type=float, default=30.0, help="seconds per model and runtime")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as export_dir:
        for model_id in args.models:
            row = {"model": model_id, "runtimes": {}}
            for label, options in VARIANTS.items():
                config = SpeedConfig(batch_sizes=(1, 8), time_budget_s=args.time_budget, **options)
                print(f"{model_id}: {label} ...", file=sys.stderr)
                result = measure(get_entry(model_id), "cpu", config, export_dir=Path(export_dir))
                row["runtimes"][label] = asdict(result)
            rows.append(row)

    def img_s(row: dict, label: str, batch: int) -> float | None:
        return next((b["images_per_s"] for b in row["runtimes"][label]["batches"] if b["batch_size"] == batch), None)

    print(f"\nfloat32 on the CPU, {torch.get_num_threads()} threads; images/s (median), batch 1 | batch 8")
    print(f"{'model':<22}" + "".join(f"{label:>26}" for label in VARIANTS) + f"{'ORT / eager (b1)':>18}")
    for row in rows:
        cells = []
        for label in VARIANTS:
            b1, b8 = img_s(row, label, 1), img_s(row, label, 8)
            cells.append(f"{b1:.1f} | {'-' if b8 is None else f'{b8:.1f}'}")
        ratio = img_s(row, "ONNX Runtime", 1) / img_s(row, "eager", 1)
        print(f"{row['model']:<22}" + "".join(f"{c:>26}" for c in cells) + f"{ratio:>17.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows,
                                   "note": "one run; the machine may be shared with other work while measuring"},
                                  indent=1))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
