"""Server memory across big ONNX uploads: the resident set size (RSS) of a
server process (the app behind a TestClient, in this process: the upload's
parsing, checks and store; cold analyses may run in the pool's processes) after N uploads of
distinct ONNX files (one architecture exported once, each copy made distinct
by its doc_string, so each is a new id analysed cold).

Prints RSS after each upload and writes bench/results/custom_memory.json.
Growth past the first upload is what the process keeps per upload (or fails
to give back to the system).

    .venv/bin/python bench/custom_memory.py [--model resnet50] [--uploads 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results" / "custom_memory.json"


def rss_mb() -> float:
    """VmRSS of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    import onnx
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app
    from tests.onnx_exports import export_zoo_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--uploads", type=int, default=8)
    args = parser.parse_args()
    model = onnx.load_from_string(export_zoo_model(args.model))
    cache_dir = Path(tempfile.mkdtemp(prefix="convzoo-bench-memory-"))
    app = create_app(Settings(cache_dir=cache_dir, warm_cache=False, device="cpu"))
    rows = []
    with TestClient(app) as client:
        for i in range(args.uploads):
            model.doc_string = f"copy {i}"
            data = model.SerializeToString()
            start = time.perf_counter()
            response = client.post("/api/custom/onnx", files={"file": (f"{args.model}.onnx", data)})
            assert response.status_code == 201, response.text
            del data
            rows.append({"upload": i + 1, "file_mb": round(model.ByteSize() / 1e6, 1),
                         "seconds": round(time.perf_counter() - start, 2), "rss_mb": round(rss_mb(), 1)})
            print(f"upload {i + 1:>3}: {rows[-1]['file_mb']} MB file, {rows[-1]['seconds']} s, "
                  f"RSS {rows[-1]['rss_mb']:.0f} MB", flush=True)
    half = len(rows) // 2  # the allocator settles over the first uploads: the second half shows what stays
    result = {"model": args.model, "uploads": rows, "rss_after_first_mb": rows[0]["rss_mb"],
              "rss_after_last_mb": rows[-1]["rss_mb"],
              "growth_per_upload_second_half_mb": round((rows[-1]["rss_mb"] - rows[half - 1]["rss_mb"])
                                                        / max(1, len(rows) - half), 1),
              "load_average": os.getloadavg(), "python": platform.python_version()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "uploads"}))


if __name__ == "__main__":
    main()
