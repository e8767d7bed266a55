"""The ``convzoo`` command: serve the app, print a model's per-layer summary,
fetch weights."""

from __future__ import annotations

import argparse
import json
import os
import sys

from app.errors import ApiError


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
    uvicorn.run("app.main:app", host=args.host, port=args.port, log_level="info")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from app.config import Settings
    from app.deps import lookup_entry
    from app.services.analysis_cache import AnalysisCache
    from app.services.zoo import layers_csv, layers_data, layers_table

    cache = AnalysisCache(Settings().cache_dir)
    data = layers_data(cache, lookup_entry(args.model), args.resolution)
    if args.format == "json":
        print(json.dumps(data.model_dump(), indent=1))
    elif args.format == "csv":
        sys.stdout.write(layers_csv(data))
    else:
        print(layers_table(data))
    return 0


def _weights_fetch(args: argparse.Namespace) -> int:
    from app.deps import lookup_entry
    from models.weights import WeightsError, fetch_weights

    try:
        path = fetch_weights(lookup_entry(args.model), progress=True, timeout_s=args.timeout)
    except WeightsError as exc:
        print(f"convzoo: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model}: weights in {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convzoo", description="Explore convolutional network architectures.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=_serve)

    summary = sub.add_parser("summary", help="print a model's per-layer analysis")
    summary.add_argument("model", help="a model id, e.g. vgg16 (see GET /api/models)")
    summary.add_argument("--resolution", type=int, default=None, help="square input side in pixels")
    summary.add_argument("--format", choices=("table", "json", "csv"), default="table")
    summary.set_defaults(run=_summary)

    weights = sub.add_parser("weights", help="manage trained weights (torch's hub cache)")
    weights_sub = weights.add_subparsers(dest="weights_command", required=True)
    fetch = weights_sub.add_parser("fetch", help="download a torchvision model's weights into torch's cache")
    fetch.add_argument("model", help="a torchvision model id, e.g. resnet50")
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
