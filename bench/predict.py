"""Prediction speed of the default model: in-process vs over HTTP, on the
runtime the server uses (--runtime: auto = ONNX Runtime on the CPU, or torch).

1. Latency: bytes -> decode -> the model's preprocessing -> forward ->
   softmax top-5 in this process (the same Predictor the server's worker
   runs), alternating with the same image POSTed to `convzoo serve` in its own
   process on loopback (each triple sees the same background load); p50/p95.
2. The raw forward in this process: batch 1 and batch 8 from one caller (the
   issue's reference: "raw ONNX Runtime batch throughput"), and batch 1 from
   two concurrent callers (the most this predictor does here: OrtModel gives
   concurrent calls a core each).
3. Throughput with 1, 4 and 8 concurrent HTTP clients, the batch sizes the
   worker formed, and the CPU the server and the clients spent per image.

Two clients are measured. The raw one (RawClient: one prebuilt request, a
keep-alive socket, the status line and Content-Length parsed, as wrk or ab
do) spends ~0.1 ms of CPU per request; httpx, a typical Python client,
~0.7 ms. On this 2-core machine the clients' CPU is taken from the server
and, with one client, their time is added to each request; so the goals are
judged with the raw client (what the server costs), and httpx's figures are
printed beside them (what a Python caller on the same machine sees).

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
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `convzoo serve` sets it, before torch loads

import httpx  # noqa: E402
import torch  # noqa: E402
from load import percentile  # noqa: E402
from warmup import cpu_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "predict.json"
MODEL = "efficientnet_lite0"
CLIENT_COUNTS = (1, 4, 8)


class InProcess:
    """The default model loaded here as the server's worker loads it: the
    per-request work without HTTP."""

    def __init__(self, runtime: str, export_dir: Path) -> None:
        from app.images import decode_image
        from models.predictor import Predictor
        from models.registry import get_entry

        self.decode = decode_image
        self.predictor = Predictor.load(get_entry(MODEL), torch.device("cpu"), runtime=runtime,
                                        export_dir=export_dir, concurrent=True)  # as the server's worker
        self.preprocessing = self.predictor.preprocessing

    def predict_ms(self, image: bytes) -> float:
        started = time.perf_counter()
        x = self.preprocessing(self.decode(image, 50_000_000, self.preprocessing.resize))[None]
        self.predictor.classify(x, 5)
        return (time.perf_counter() - started) * 1000

    def forward_img_s(self, batch: int, images: int, callers: int = 1) -> float:
        """Images per second of ``callers`` threads each classifying batches back to back."""
        crop = self.preprocessing.crop
        x = torch.randn(batch, 3, crop, crop)
        self.predictor.classify(x, 5)
        rounds = max(2, images // (batch * callers))
        barrier = threading.Barrier(callers + 1)

        def run() -> None:
            barrier.wait()
            for _ in range(rounds):
                self.predictor.classify(x, 5)

        threads = [threading.Thread(target=run) for _ in range(callers)]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        return batch * rounds * callers / (time.perf_counter() - started)


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

    def cpu_s(self) -> float:
        """CPU seconds the server has used (its process and any analysis processes)."""
        return sum(cpu_seconds(self.process.pid).values())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def multipart_request(port: int, image: bytes) -> bytes:
    boundary = "convzoo-bench-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class RawClient:
    """One keep-alive connection sending one prebuilt POST: the status line
    and Content-Length are parsed, the body read whole (as wrk or ab do)."""

    def __init__(self, port: int, request: bytes) -> None:
        self.request = request
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def post(self) -> bytes:
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.pending:
            self.pending += self._recv()
        head, self.pending = self.pending.split(b"\r\n\r\n", 1)
        status = head.split(b" ", 2)[1]
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                      if line.lower().startswith(b"content-length:"))
        while len(self.pending) < length:
            self.pending += self._recv()
        body, self.pending = self.pending[:length], self.pending[length:]
        if status != b"200":
            raise RuntimeError(f"HTTP {status.decode()}: {body[:200]!r}")
        return body

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


class HttpxClient:
    def __init__(self, url: str, image: bytes) -> None:
        self.client = httpx.Client(timeout=60)
        self.url, self.image = url, image

    def post(self) -> bytes:
        response = self.client.post(f"{self.url}/api/predict", files={"file": ("image.jpg", self.image)})
        response.raise_for_status()
        return response.content

    def close(self) -> None:
        self.client.close()


def timed(client) -> float:
    started = time.perf_counter()
    client.post()
    return (time.perf_counter() - started) * 1000


def paired_latency(local: InProcess, clients: dict, image: bytes, requests: int) -> dict:
    """In-process and each client's request in turn, so all see the same
    background load on a shared machine."""
    local_ms: list[float] = []
    http_ms: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(3):
        local.predict_ms(image)
        for client in clients.values():
            client.post()
    for _ in range(requests):
        local_ms.append(local.predict_ms(image))
        for name, client in clients.items():
            http_ms[name].append(timed(client))
    result = {"in_process_p50_ms": statistics.median(local_ms), "in_process_p95_ms": percentile(local_ms, 0.95)}
    for name, values in http_ms.items():
        result[f"{name}_http_p50_ms"] = statistics.median(values)
        result[f"{name}_http_p95_ms"] = percentile(values, 0.95)
    return result


def throughput(server: Server, make_client: Callable[[], object], clients: int, requests: int) -> dict:
    """``clients`` threads, each posting its share of ``requests`` back to back;
    also the CPU the server and this process spent per image."""
    before = httpx.get(f"{server.url}/api/predict/worker").json()["batch_sizes"]
    per_client = max(1, requests // clients)
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def run() -> None:
        client = make_client()
        try:
            client.post()  # connect first
            barrier.wait()
            for _ in range(per_client):
                ms = timed(client)
                with lock:
                    latencies.append(ms)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    server_cpu, own = server.cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    server_cpu, after_own = server.cpu_s() - server_cpu, resource.getrusage(resource.RUSAGE_SELF)
    images = clients * per_client
    after = httpx.get(f"{server.url}/api/predict/worker").json()["batch_sizes"]
    formed = {size: count - before.get(size, 0) for size, count in after.items() if count - before.get(size, 0)}
    client_cpu = (after_own.ru_utime + after_own.ru_stime) - (own.ru_utime + own.ru_stime)
    return {"img_s": images / elapsed, "p50_ms": statistics.median(latencies), "batch_sizes": formed,
            "server_cpu_ms_per_img": server_cpu / images * 1000, "client_cpu_ms_per_img": client_cpu / images * 1000}


def measure_round(local: InProcess, server: Server, image: bytes, requests: int, reverse: bool) -> dict:
    request = multipart_request(server.port, image)
    makers = {"raw": lambda: RawClient(server.port, request), "httpx": lambda: HttpxClient(server.url, image)}
    latency_clients = {name: make() for name, make in makers.items()}
    try:
        latency = paired_latency(local, latency_clients, image, requests)
    finally:
        for client in latency_clients.values():
            client.close()
    order = tuple(reversed(CLIENT_COUNTS)) if reverse else CLIENT_COUNTS  # no level always measured first
    return {
        "latency": latency,
        "forward_img_s": {"batch1": local.forward_img_s(1, requests), "batch8": local.forward_img_s(8, requests * 2),
                          "batch1_two_callers": local.forward_img_s(1, requests * 2, callers=2)},
        "clients": {n: throughput(server, makers["raw"], n, requests * max(1, n // 2)) for n in order},
        "httpx_clients": {8: throughput(server, makers["httpx"], 8, requests * 4)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="requests per measurement")
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
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as cache_dir:
        local = InProcess(args.runtime, Path(cache_dir) / "onnx")  # exports first; the server finds it cached
        server = Server(cache_dir, {"CONVZOO_RUNTIME": args.runtime,
                                    **dict(kv.split("=", 1) for kv in args.server_env)})
        try:
            for r in range(args.repeats):
                result = measure_round(local, server, image, args.requests, reverse=r % 2 == 1)
                rounds.append(result)
                lat = result["latency"]
                print(f"round {r + 1}/{args.repeats}: in-process p50 {lat['in_process_p50_ms']:.1f} ms, "
                      f"HTTP p50 {lat['raw_http_p50_ms']:.1f} ms (httpx {lat['httpx_http_p50_ms']:.1f}), "
                      + ", ".join(f"{n} clients {result['clients'][n]['img_s']:.1f} img/s" for n in CLIENT_COUNTS)
                      + f" (httpx, 8: {result['httpx_clients'][8]['img_s']:.1f}); raw batch 8 "
                      f"{result['forward_img_s']['batch8']:.1f} img/s", file=sys.stderr)
        finally:
            server.stop()
    load.append(os.getloadavg()[0])

    def med(get) -> float:
        return statistics.median(get(r) for r in rounds)

    summary = {
        **{key: med(lambda r, key=key: r["latency"][key]) for key in rounds[0]["latency"]},
        **{f"forward_{name}_img_s": med(lambda r, name=name: r["forward_img_s"][name])
           for name in rounds[0]["forward_img_s"]},
        "throughput_img_s": {n: med(lambda r, n=n: r["clients"][n]["img_s"]) for n in CLIENT_COUNTS},
        "latency_p50_ms_under_load": {n: med(lambda r, n=n: r["clients"][n]["p50_ms"]) for n in CLIENT_COUNTS},
        "server_cpu_ms_per_img": {n: med(lambda r, n=n: r["clients"][n]["server_cpu_ms_per_img"])
                                  for n in CLIENT_COUNTS},
        "client_cpu_ms_per_img": {"raw, 8 clients": med(lambda r: r["clients"][8]["client_cpu_ms_per_img"]),
                                  "httpx, 8 clients": med(lambda r: r["httpx_clients"][8]["client_cpu_ms_per_img"])},
        "httpx_throughput_8_clients_img_s": med(lambda r: r["httpx_clients"][8]["img_s"]),
    }
    # Ratios are taken within each round (same background load), then the median.
    for client in ("raw", "httpx"):
        summary[f"{client}_http_over_in_process_p50"] = med(
            lambda r, c=client: r["latency"][f"{c}_http_p50_ms"] / r["latency"]["in_process_p50_ms"])
    summary["speedup_8_vs_1_clients"] = med(lambda r: r["clients"][8]["img_s"] / r["clients"][1]["img_s"])
    summary["served_8_over_raw_batch8"] = med(lambda r: r["clients"][8]["img_s"] / r["forward_img_s"]["batch8"])
    summary["served_8_over_two_callers"] = med(
        lambda r: r["clients"][8]["img_s"] / r["forward_img_s"]["batch1_two_callers"])
    summary["httpx_served_8_over_raw_batch8"] = med(
        lambda r: r["httpx_clients"][8]["img_s"] / r["forward_img_s"]["batch8"])
    summary["goals_met"] = {"served_8_clients_at_least_0.8x_raw_batch8": summary["served_8_over_raw_batch8"] >= 0.8,
                            "http_p50_within_1.3x": summary["raw_http_over_in_process_p50"] <= 1.3,
                            "8_clients_at_least_2.5x_one": summary["speedup_8_vs_1_clients"] >= 2.5}

    print(f"\nEfficientNet-Lite0 on {local.predictor.runtime} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}); medians of {args.repeats} rounds; "
          f"load average {load[0]:.1f} -> {load[1]:.1f}")
    print(f"{'measure':60s} {'value':>10s}")
    rows = [
        ("in-process decode+preprocess+forward p50 (ms)", summary["in_process_p50_ms"]),
        ("in-process p95 (ms)", summary["in_process_p95_ms"]),
        ("HTTP /api/predict p50, raw client (ms)", summary["raw_http_p50_ms"]),
        ("HTTP p95, raw client (ms)", summary["raw_http_p95_ms"]),
        ("HTTP p50, httpx (ms)", summary["httpx_http_p50_ms"]),
        ("HTTP p50 / in-process p50, raw client (goal <= 1.3)", summary["raw_http_over_in_process_p50"]),
        ("HTTP p50 / in-process p50, httpx", summary["httpx_http_over_in_process_p50"]),
        ("raw forward, batch 1, one caller (img/s)", summary["forward_batch1_img_s"]),
        ("raw forward, batch 8, one caller (img/s)", summary["forward_batch8_img_s"]),
        ("raw forward, batch 1, two callers (img/s)", summary["forward_batch1_two_callers_img_s"]),
        *[(f"HTTP throughput, {n} client{'s' if n > 1 else ''}, raw (img/s)", summary["throughput_img_s"][n])
          for n in CLIENT_COUNTS],
        ("HTTP throughput, 8 clients, httpx (img/s)", summary["httpx_throughput_8_clients_img_s"]),
        *[(f"HTTP p50 latency, {n} client{'s' if n > 1 else ''} (ms)", summary["latency_p50_ms_under_load"][n])
          for n in CLIENT_COUNTS],
        *[(f"server CPU per image, {n} client{'s' if n > 1 else ''} (ms)", summary["server_cpu_ms_per_img"][n])
          for n in CLIENT_COUNTS],
        ("client CPU per image, 8 raw clients (ms)", summary["client_cpu_ms_per_img"]["raw, 8 clients"]),
        ("client CPU per image, 8 httpx clients (ms)", summary["client_cpu_ms_per_img"]["httpx, 8 clients"]),
        ("8 / 1 client throughput, per round (goal >= 2.5)", summary["speedup_8_vs_1_clients"]),
        ("8 clients served / raw batch-8 forward (goal >= 0.8)", summary["served_8_over_raw_batch8"]),
        ("8 clients served / two callers' batch-1 forward", summary["served_8_over_two_callers"]),
        ("8 httpx clients served / raw batch-8 forward", summary["httpx_served_8_over_raw_batch8"]),
    ]
    for name, value in rows:
        print(f"{name:60s} {value:10.2f}")
    print("batch sizes formed (last round):",
          {n: c["batch_sizes"] for n, c in rounds[-1]["clients"].items()})

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        "model": MODEL, "device": "cpu", "runtime": local.predictor.runtime,
        "runtime_reason": local.predictor.runtime_reason, "cpus": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "requests_per_measurement": args.requests,
        "repeats": args.repeats, "server_env": args.server_env, "load_average": {"start": load[0], "end": load[1]},
        "summary": summary, "rounds": rounds,
        "note": "medians over rounds; the machine may be shared with other work while measuring",
    }, indent=1))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
