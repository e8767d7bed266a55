"""Prediction speed of the default model: in-process vs over HTTP, on the
runtime the server uses (--runtime: auto = ONNX Runtime on the CPU, or torch).

1. Latency: bytes -> decode -> the model's preprocessing -> forward ->
   softmax top-5 in this process (the same Predictor the server's worker
   runs), alternating with the same image POSTed to `convzoo serve` in its own
   process on loopback (pairs see the same background load); p50/p95 of each.
2. The raw forward at batch 1 and batch 8 (the ceiling batching can reach).
3. Throughput with 1, 4 and 8 concurrent HTTP clients, and the batch sizes
   the worker formed.

Every figure is the median over --repeats rounds, because the machine may be
shared. Goals (issue 12): 8-client served throughput at least 80% of the raw
batch-8 forward throughput; HTTP p50 at most 1.3x the in-process p50.
(Issue 4's: 8 clients at least 2.5x one client, still reported.)

    PYTHONPATH=$PWD python bench/predict.py [--requests 40] [--repeats 3] [--runtime auto|torch]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `convzoo serve` sets it, before torch loads

import httpx  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "predict.json"
MODEL = "efficientnet_lite0"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class InProcess:
    """The default model loaded here as the server's worker loads it: the
    per-request work without HTTP."""

    def __init__(self, runtime: str, export_dir: Path) -> None:
        from app.images import decode_image
        from models.predictor import Predictor
        from models.registry import get_entry

        self.decode = decode_image
        self.predictor = Predictor.load(get_entry(MODEL), torch.device("cpu"), runtime=runtime,
                                        export_dir=export_dir)
        self.preprocessing = self.predictor.preprocessing

    def predict_ms(self, image: bytes) -> float:
        started = time.perf_counter()
        x = self.preprocessing(self.decode(image, 50_000_000, self.preprocessing.resize))[None]
        self.predictor.classify(x, 5)
        return (time.perf_counter() - started) * 1000

    def forward_img_s(self, batch: int, images: int) -> float:
        crop = self.preprocessing.crop
        x = torch.randn(batch, 3, crop, crop)
        self.predictor.classify(x, 5)
        rounds = max(2, images // batch)
        started = time.perf_counter()
        for _ in range(rounds):
            self.predictor.classify(x, 5)
        return batch * rounds / (time.perf_counter() - started)


class Server:
    """`convzoo serve` in its own process, on a free loopback port."""

    def __init__(self, cache_dir: str, extra_env: dict[str, str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVZOO_WARM_CACHE": "false", "CONVZOO_DEVICE": "cpu",
               "CONVZOO_CACHE_DIR": cache_dir, **extra_env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 600  # a first export to ONNX, on a busy machine
        while True:
            try:
                if httpx.get(f"{self.url}/api/predict/worker").json()["loaded_models"]:
                    break  # up, with the default model loaded and warmed
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("the server did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def post(client: httpx.Client, url: str, image: bytes) -> float:
    started = time.perf_counter()
    response = client.post(f"{url}/api/predict", files={"file": ("image.jpg", image)})
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def paired_latency(local: InProcess, url: str, image: bytes, requests: int) -> dict:
    """In-process and HTTP requests alternate, so both see the same background
    load on a shared machine."""
    local_ms, http_ms = [], []
    with httpx.Client(timeout=60) as client:
        for _ in range(3):
            local.predict_ms(image), post(client, url, image)
        for _ in range(requests):
            local_ms.append(local.predict_ms(image))
            http_ms.append(post(client, url, image))
    return {"in_process_p50_ms": statistics.median(local_ms), "in_process_p95_ms": percentile(local_ms, 0.95),
            "http_p50_ms": statistics.median(http_ms), "http_p95_ms": percentile(http_ms, 0.95),
            "paired_ratio_p50": statistics.median(h / l for h, l in zip(http_ms, local_ms))}


def throughput(url: str, image: bytes, clients: int, requests: int) -> dict:
    """``clients`` threads, each posting its share of ``requests`` back to back."""
    before = httpx.get(f"{url}/api/predict/worker").json()["batch_sizes"]
    per_client = max(1, requests // clients)
    latencies: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        with httpx.Client(timeout=60) as client:
            post(client, url, image)  # connect first
            barrier.wait()
            for _ in range(per_client):
                ms = post(client, url, image)
                with lock:
                    latencies.append(ms)

    barrier = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    after = httpx.get(f"{url}/api/predict/worker").json()["batch_sizes"]
    formed = {size: count - before.get(size, 0) for size, count in after.items() if count - before.get(size, 0)}
    return {"img_s": clients * per_client / elapsed, "p50_ms": statistics.median(latencies),
            "batch_sizes": formed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--server-env", nargs="*", default=[], metavar="KEY=VALUE",
                        help="settings for the server, e.g. CONVZOO_MAX_BATCH_WAIT_MS=20")
    parser.add_argument("--image", default=None, help="image file (default: matplotlib's grace_hopper.jpg)")
    parser.add_argument("--runtime", choices=("auto", "onnxruntime", "torch"), default="auto",
                        help="the inference runtime, here and in the server (CONVZOO_RUNTIME)")
    parser.add_argument("--output", default=str(RESULTS), help="where the JSON goes")
    args = parser.parse_args()
    if args.image:
        image = Path(args.image).read_bytes()
    else:
        import matplotlib.cbook
        image = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()

    rounds: list[dict] = []
    with tempfile.TemporaryDirectory() as cache_dir:
        local = InProcess(args.runtime, Path(cache_dir) / "onnx")  # exports first; the server finds it cached
        server = Server(cache_dir, {"CONVZOO_RUNTIME": args.runtime,
                                    **dict(kv.split("=", 1) for kv in args.server_env)})
        try:
            for r in range(args.repeats):
                order = (1, 4, 8) if r % 2 == 0 else (8, 4, 1)  # no level always measured first
                result = {"latency": paired_latency(local, server.url, image, args.requests),
                          "forward_img_s": {b: local.forward_img_s(b, args.requests) for b in (1, 8)},
                          "clients": {n: throughput(server.url, image, n, args.requests * max(1, n // 2))
                                      for n in order}}
                rounds.append(result)
                lat = result["latency"]
                print(f"round {r + 1}/{args.repeats}: in-process p50 {lat['in_process_p50_ms']:.1f} ms, "
                      f"HTTP p50 {lat['http_p50_ms']:.1f} ms, "
                      + ", ".join(f"{n} clients {result['clients'][n]['img_s']:.1f} img/s" for n in (1, 4, 8)),
                      file=sys.stderr)
        finally:
            server.stop()

    def med(get) -> float:
        return statistics.median(get(r) for r in rounds)

    summary = {
        **{key: med(lambda r, key=key: r["latency"][key]) for key in rounds[0]["latency"]},
        "forward_batch1_img_s": med(lambda r: r["forward_img_s"][1]),
        "forward_batch8_img_s": med(lambda r: r["forward_img_s"][8]),
        "throughput_img_s": {n: med(lambda r, n=n: r["clients"][n]["img_s"]) for n in (1, 4, 8)},
        "latency_p50_ms_under_load": {n: med(lambda r, n=n: r["clients"][n]["p50_ms"]) for n in (1, 4, 8)},
    }
    # Ratios are taken within each round (same background load), then the median.
    summary["http_over_in_process_p50"] = med(lambda r: r["latency"]["http_p50_ms"] / r["latency"]["in_process_p50_ms"])
    summary["speedup_8_vs_1_clients"] = med(lambda r: r["clients"][8]["img_s"] / r["clients"][1]["img_s"])
    summary["served_8_over_raw_batch8"] = med(lambda r: r["clients"][8]["img_s"] / r["forward_img_s"][8])
    summary["goals_met"] = {"served_8_clients_at_least_0.8x_raw_batch8": summary["served_8_over_raw_batch8"] >= 0.8,
                            "http_p50_within_1.3x": summary["http_over_in_process_p50"] <= 1.3,
                            "8_clients_at_least_2.5x_one": summary["speedup_8_vs_1_clients"] >= 2.5}

    print(f"\nEfficientNet-Lite0 on {local.predictor.runtime} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}); medians of {args.repeats} rounds")
    print(f"{'measure':52s} {'value':>10s}")
    rows = [
        ("in-process decode+preprocess+forward p50 (ms)", summary["in_process_p50_ms"]),
        ("in-process p95 (ms)", summary["in_process_p95_ms"]),
        ("HTTP /api/predict p50 (ms)", summary["http_p50_ms"]),
        ("HTTP p95 (ms)", summary["http_p95_ms"]),
        ("HTTP p50 / in-process p50, per round (goal <= 1.3)", summary["http_over_in_process_p50"]),
        ("median of per-request HTTP / in-process ratios", summary["paired_ratio_p50"]),
        ("raw forward, batch 1 (img/s)", summary["forward_batch1_img_s"]),
        ("raw forward, batch 8 (img/s)", summary["forward_batch8_img_s"]),
        *[(f"HTTP throughput, {n} client{'s' if n > 1 else ''} (img/s)", summary["throughput_img_s"][n])
          for n in (1, 4, 8)],
        *[(f"HTTP p50 latency, {n} client{'s' if n > 1 else ''} (ms)", summary["latency_p50_ms_under_load"][n])
          for n in (1, 4, 8)],
        ("8 / 1 client throughput, per round (goal >= 2.5)", summary["speedup_8_vs_1_clients"]),
        ("8 clients served / raw batch-8 forward (goal >= 0.8)", summary["served_8_over_raw_batch8"]),
    ]
    for name, value in rows:
        print(f"{name:52s} {value:10.2f}")
    print("batch sizes formed (last round):",
          {n: c["batch_sizes"] for n, c in rounds[-1]["clients"].items()})

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        "model": MODEL, "device": "cpu", "runtime": local.predictor.runtime,
        "runtime_reason": local.predictor.runtime_reason, "cpus": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "requests_per_measurement": args.requests,
        "repeats": args.repeats, "server_env": args.server_env, "summary": summary, "rounds": rounds,
        "note": "medians over rounds; the machine may be shared with other work while measuring",
    }, indent=1))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
