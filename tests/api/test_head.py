"""HEAD answers like GET without a body on every page and API route (issue 17):
the same status and content type, an empty body. Routes are read from the app
itself, so one added later is covered too."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

# A value for each path parameter that reaches a real answer where one exists.
SAMPLE = {"model_id": "resnet18", "name": "chelsea.png", "job_id": "no-such-job"}


def _flat(routes) -> list:
    """Routes, with those of included routers (FastAPI >= 0.165 keeps them behind an _IncludedRouter)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(_flat(inner.routes) if inner is not None else [route])
    return out


def _get_routes(app) -> list[str]:
    paths = []
    for route in _flat(app.routes):
        if isinstance(route, Route) and "GET" in (route.methods or ()) and not route.path.endswith("/events"):
            paths.append(re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLE.get(m.group(1), "x"), route.path))
    return paths


def test_every_get_route_is_listed(app):
    paths = _get_routes(app)
    for expected in ("/", "/models/resnet18", "/predict", "/lab", "/speed", "/docs", "/api/models",
                     "/api/models/resnet18/layers", "/api/health"):
        assert expected in paths


@pytest.mark.parametrize("suffix", ["", "?resolution=160", "?resolution=31"])
def test_head_matches_get_on_every_route(client, app, suffix):
    for path in _get_routes(app):
        url = path + (suffix if "resnet18" in path else "")
        got, head = client.get(url), client.head(url)
        assert head.status_code == got.status_code, url
        assert head.headers.get("content-type") == got.headers.get("content-type"), url
        assert head.content == b"", url


def test_head_on_static_and_unknown(client):
    assert client.head("/static/plotly.min.js").status_code == 200
    assert client.head("/models/no_such_model").status_code == 404
    assert client.head("/api/models/no_such_model").status_code == 404
