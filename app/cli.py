"""The ``convzoo`` command: serve the app, print a model's per-layer summary,
measure models' speed, fetch weights."""

from __future__ import annotations

import argparse
import json
import os
import sys

from app.errors import ApiError


GRACEFUL_SHUTDOWN_S = 10


def _serve(args: argparse.Namespace) -> int:
    import logging

    # Before torch loads OpenMP: idle threads sleep instead of spinning. On a
    # machine shared with other work, spinning threads take the cores that a
    # preempted peer needs to reach the barrier (measured here: a 2-thread
    # forward of EfficientNet-Lite0 took 1.1 s instead of 84 ms under load).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import uvicorn

    # Our loggers (warm-up progress, worker) print beside uvicorn's.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    # Analysis processes per worker: the cores shared out among the workers
    # (N workers each with one per core would oversubscribe the machine N times).
    os.environ.setdefault("CONVZOO_ANALYSIS_PROCESSES", str(max(1, (os.cpu_count() or 1) // args.workers)))
    if args.ray:
        _deploy_on_ray(args)
    # With workers > 1 uvicorn spawns that many processes on one socket; they share
    # job state, leases and the warm-up through the cache directory (app/state_store.py).
    # A stop waits this long for open connections (a stalled upload would hold it for good)
    uvicorn.run("app.main:app", host=args.host, port=args.port, log_level="info", workers=args.workers,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    return 0


def _deploy_on_ray(args: argparse.Namespace) -> None:
    """Start (or join) Ray, deploy the predictor, and point every web worker at it."""
    if not (args.ray_address or os.environ.get("CONVZOO_RAY_ADDRESS")):
        # A Ray started here for this server listens on loopback only (read when ray is imported).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise SystemExit("convzoo: --ray needs Ray Serve: pip install 'convzoo[ray]'") from None
    from app.config import Settings
    from app.predict.ray_serve import deploy

    if args.ray_address:
        os.environ["CONVZOO_RAY_ADDRESS"] = args.ray_address
    settings = Settings()
    deploy(settings, replicas=args.ray_replicas or settings.ray_replicas, cpus_per_replica=settings.ray_replica_cpus)
    os.environ["CONVZOO_PREDICTOR"] = "ray"
    os.environ["CONVZOO_RAY_ADDRESS"] = ray.get_runtime_context().gcs_address


def _onnx_file_entry(path: str, settings, cache, resolution: int | None):
    """An ONNX file analysed as the upload route does, and kept in the same
    store: the id printed here opens in the web app too."""
    from pathlib import Path

    from app.custom.data import add_onnx
    from app.custom.store import CustomStore
    from app.errors import TooLarge

    file = Path(path)
    if not file.is_file():
        raise ApiError(f"No file {path!r}.")
    if file.stat().st_size > settings.max_onnx_bytes:
        raise TooLarge(f"{path} is {file.stat().st_size:,} bytes; the limit is {settings.max_onnx_bytes:,} bytes.")
    store = CustomStore(settings.cache_dir / "custom", settings.custom_store_bytes, on_evict=cache.forget)
    store.install()
    created = add_onnx(store, cache, file.read_bytes(), resolution)
    print(f"{created.id}: {created.name} ({created.analysis_ms:.0f} ms)", file=sys.stderr)
    return store.entry(created.id)


def _summary(args: argparse.Namespace) -> int:
    from app.config import Settings
    from app.deps import lookup_entry
    from app.analysis_cache import AnalysisCache
    from app.zoo.data import layers_csv, layers_data, layers_table

    settings = Settings()
    cache = AnalysisCache(settings.cache_dir)
    if args.model.endswith(".onnx"):
        entry = _onnx_file_entry(args.model, settings, cache, args.resolution)
    else:
        entry = lookup_entry(args.model)
    data = layers_data(cache, entry, args.resolution)
    if args.format == "json":
        print(json.dumps(data.model_dump(), indent=1))
    elif args.format == "csv":
        sys.stdout.write(layers_csv(data))
    else:
        print(layers_table(data))
    return 0


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 1,8,32; got {text!r}") from None


def _bench(args: argparse.Namespace) -> int:
    from dataclasses import asdict, replace

    import torch

    from app.config import Settings
    from app.deps import lookup_entry
    from app.speed.jobs import SpeedStore
    from models.speed import BATCH_SIZES, SpeedConfig, SpeedError, measure
    from models.speed_backends import device_info

    try:
        device = torch.device(args.device)
    except RuntimeError:
        print(f"convzoo: --device must be cpu, cuda or cuda:N, not {args.device!r}.", file=sys.stderr)
        return 2
    if device.type == "cuda" and not torch.cuda.is_available():
        print("convzoo: --device cuda, but torch sees no GPU here.", file=sys.stderr)
        return 2
    entries = [lookup_entry(model_id) for model_id in args.model]
    config = SpeedConfig(batch_sizes=args.batch or BATCH_SIZES, resolution=args.resolution, dtype=args.dtype,
                         channels_last=args.channels_last, runtime=args.runtime if args.runtime != "all" else "eager",
                         warmup=args.warmup, repeats=args.repeats, min_repeats=min(3, args.repeats),
                         time_budget_s=args.time_budget)
    # "all": the three ways of running the same float32 weights on a CPU, side by side
    configs = [config] if args.runtime != "all" else [
        replace(config, dtype="float32", channels_last=False),
        replace(config, dtype="float32", channels_last=True),
        replace(config, dtype="float32", channels_last=False, runtime="onnxruntime")]
    settings = Settings()
    store = None if args.no_save else SpeedStore(settings.cache_dir, device_info(device))
    results = []
    for entry in entries:
        for variant in configs:
            print(f"measuring {entry.id} on {device}, {variant.variant} ...", file=sys.stderr)
            try:
                result = measure(entry, device, variant, export_dir=settings.cache_dir / "onnx")
            except SpeedError as exc:
                print(f"convzoo: {exc}", file=sys.stderr)
                return 2
            if store is not None:
                store.save(result)
            results.append(result)
    if args.format == "json":
        print(json.dumps({"results": [asdict(r) for r in results]}, indent=1))
        return 0
    info = results[0].device
    print(f"{info.name} ({info.device}, {info.threads} threads), torch {info.torch_version}")
    print(f"{'model':<24} {'variant':<22} {'input':>9} {'batch':>5} {'median ms':>10} {'p90 ms':>9} "
          f"{'ms/image':>9} {'images/s':>9} {'peak MB':>8}")
    for result in results:
        for b in result.batches:
            peak = "-" if b.peak_memory_bytes is None else f"{b.peak_memory_bytes / 1e6:.1f}"
            print(f"{result.model_id:<24} {result.variant:<22} {result.input_shape[1]:>4}x{result.input_shape[2]:<4} "
                  f"{b.batch_size:>5} {b.median_ms:>10.2f} {b.p90_ms:>9.2f} {b.ms_per_image:>9.2f} "
                  f"{b.images_per_s:>9.1f} {peak:>8}")
        if result.stopped != "completed":
            print(f"{result.model_id:<24} stopped: {result.stop_detail}")
    return 0


def _weights_fetch(args: argparse.Namespace) -> int:
    from app.deps import lookup_entry
    from models.weights import WeightsError, cached_weights_file, fetch_weights

    def report(received: int, total: int | None) -> None:
        done = f"{received / total:6.1%}" if total else f"{received:,} bytes"
        print(f"\r{args.model}: {done}", end="", file=sys.stderr, flush=True)

    entry = lookup_entry(args.model)
    try:
        fetch_weights(entry, progress=report, timeout_s=args.timeout)
    except WeightsError as exc:
        print(f"\nconvzoo: {exc}", file=sys.stderr)
        return 1
    print(f"\n{args.model}: weights in {cached_weights_file(entry)}")  # the user's own machine: the path helps
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convzoo", description="Explore convolutional network architectures.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (they share one state)")
    serve.add_argument("--ray", action="store_true", help="serve predictions from a Ray Serve deployment")
    serve.add_argument("--ray-address", default=None, help="a Ray cluster to join (default: start one here)")
    serve.add_argument("--ray-replicas", type=int, default=None, help="predictor replicas (default 2)")
    serve.set_defaults(run=_serve)

    summary = sub.add_parser("summary", help="print a model's per-layer analysis")
    summary.add_argument("model", help="a model id, e.g. vgg16 (see GET /api/models), or an .onnx file")
    summary.add_argument("--resolution", type=int, default=None, help="square input side in pixels")
    summary.add_argument("--format", choices=("table", "json", "csv"), default="table")
    summary.set_defaults(run=_summary)

    bench = sub.add_parser("bench", help="measure latency, throughput and memory on this machine")
    bench.add_argument("model", nargs="+", help="model ids, e.g. resnet50 mobilenet_v3_large")
    bench.add_argument("--batch", type=_batch_sizes, default=None, help="batch sizes, e.g. 1,8,32 (default 1,2,4...64)")
    bench.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    bench.add_argument("--format", choices=("table", "json"), default="table")
    bench.add_argument("--resolution", type=int, default=None, help="square input side (default: the model's own)")
    bench.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    bench.add_argument("--channels-last", action="store_true")
    bench.add_argument("--runtime", choices=("eager", "onnxruntime", "all"), default="eager",
                       help="eager PyTorch, ONNX Runtime (float32, CPU), or all: eager, eager channels_last and "
                            "ONNX Runtime side by side")
    bench.add_argument("--warmup", type=int, default=2, help="untimed runs per batch size")
    bench.add_argument("--repeats", type=int, default=10, help="timed runs per batch size, at most")
    bench.add_argument("--time-budget", type=float, default=60.0, help="seconds per model; larger batches are skipped")
    bench.add_argument("--no-save", action="store_true", help="don't add the results to the app's speed cache")
    bench.set_defaults(run=_bench)

    weights = sub.add_parser("weights", help="manage trained weights (torch's hub cache)")
    weights_sub = weights.add_subparsers(dest="weights_command", required=True)
    fetch = weights_sub.add_parser("fetch", help="download a torchvision or timm model's weights into their cache")
    fetch.add_argument("model", help="a torchvision or timm model id, e.g. resnet50, inception_v4")
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds to wait on the network")
    fetch.set_defaults(run=_weights_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ApiError as exc:
        print(f"convzoo: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
