"""torch.compile (inductor, CPU) as a candidate runtime of the speed runner:
how long compiling one model takes, and its batch-1 latency against eager,
on the speed runner's own constant-weight model (models/speed.py).

    PYTHONPATH=$PWD python bench/torch_compile.py [--model efficientnet_lite0]

Prints the figures and writes bench/results/torch_compile.json. Inductor
builds C++ kernels with the system's compiler (gcc); the compile is timed
from torch.compile to the end of the first call (dynamic=False: one input
shape; every other batch size or resolution compiles again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `convzoo serve` sets it, before torch loads

import torch  # noqa: E402
import torch.utils.benchmark as benchmark  # noqa: E402

from models.registry import get_entry  # noqa: E402
from models.speed import SpeedConfig, prepare_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "torch_compile.json"


def batch1_ms(model, x) -> float:
    with torch.inference_mode():
        return benchmark.Timer("m(x)", globals={"m": model, "x": x}).blocked_autorange(min_run_time=2).median * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    args = parser.parse_args()
    entry = get_entry(args.model)
    model = prepare_model(entry, torch.device("cpu"), SpeedConfig())
    x = torch.rand(1, *entry.input_size)
    eager_ms = batch1_ms(model, x)
    print(f"eager, batch 1: {eager_ms:.1f} ms; compiling (minutes) ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    compiled = torch.compile(model, dynamic=False)
    with torch.inference_mode():
        compiled(x)
    compile_s = time.perf_counter() - started
    compiled_ms = batch1_ms(compiled, x)
    with torch.inference_mode():
        max_diff = float((model(x) - compiled(x)).abs().max())
    result = {"model": args.model, "compiler": shutil.which("g++") or shutil.which("gcc"), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "load_average": os.getloadavg(), "eager_batch1_ms": eager_ms,
              "compile_s": compile_s, "compiled_batch1_ms": compiled_ms, "max_abs_diff": max_diff}
    print(json.dumps(result, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
