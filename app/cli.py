"""The ``convzoo`` command: serve the app, print a model's per-layer summary."""

from __future__ import annotations

import argparse
import json
import sys

from app.errors import ApiError


def _serve(args: argparse.Namespace) -> int:
    import logging

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
