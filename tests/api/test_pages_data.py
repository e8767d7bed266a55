"""Each page renders the same data its JSON twin returns, the pages answer
404 and 422 with a page that says why, downloads work, and pages served from
the analysis cache rebuild nothing."""

from __future__ import annotations

import csv
import io

import pytest

from models.history import ilsvrc_results
from tests.conftest import analyse_course_models


@pytest.fixture(scope="module")
def warm(client):
    """The course's models analysed once here (the catalog lists cards without analysing)."""
    analyse_course_models(client.app)
    return client


def _context(client, url: str, template: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    assert response.template.name == template
    return response.context


def test_catalog_page_data_equals_api(warm):
    context = _context(warm, "/?family=ResNet&sort=params", "catalog.html")
    assert context["catalog"].model_dump(mode="json") == warm.get("/api/models?family=ResNet&sort=params&per_page=100").json()


@pytest.mark.parametrize("query", ["", "?resolution=160"])
def test_model_page_data_equals_api(warm, query):
    """The twin first: it waits for the input rule, which the page waits for at most
    PAGE_WAIT_S (not at all while other pages' jobs hold the pool) and then shows as pending."""
    model, layers = warm.get(f"/api/models/vgg16{query}").json(), warm.get(f"/api/models/vgg16/layers{query}").json()
    context = _context(warm, f"/models/vgg16{query}", "model.html")
    assert context["model"].model_dump(mode="json") == model
    assert context["layers"].model_dump(mode="json") == layers


def test_compare_page_data_equals_api(warm):
    ids = "vgg16,googlenet,mobilenet_v2"
    context = _context(warm, f"/compare?models={ids}", "compare.html")
    body = warm.get(f"/api/compare?models={ids}").json()
    assert context["compare"].model_dump(mode="json") == body
    assert [m["id"] for m in body["models"]] == ids.split(",")


def test_accuracy_chart_page_data_equals_api(warm):
    context = _context(warm, "/charts/accuracy", "charts_accuracy.html")
    assert context["chart"].model_dump(mode="json") == warm.get("/api/charts/accuracy").json()


def test_accuracy_chart_holds_every_model(warm):
    cards = warm.get("/api/models").json()["models"]
    chart = warm.get("/api/charts/accuracy").json()
    # every model with an accuracy: on the chart, or waiting for its analysis at that accuracy's resolution
    shown = sorted(p["id"] for p in chart["points"] + chart["pending"])
    assert shown == sorted(c["id"] for c in cards if c["top1"] is not None)
    assert {c["id"] for c in cards if c["top1"] is not None and not c["id"].startswith("timm-")} <= {
        p["id"] for p in chart["points"]}
    assert sorted(m["id"] for m in chart["without_accuracy"]) == sorted(c["id"] for c in cards if c["top1"] is None)
    front = [p for p in chart["points"] if p["pareto"]]
    for p in front:  # nothing on the chart beats a front model with fewer MACs
        assert not any(q["macs"] <= p["macs"] and q["top1"] > p["top1"] for q in chart["points"])
    for p in chart["points"]:
        assert p["top1_per_mparams"] == pytest.approx(p["top1"] / (p["params"] / 1e6))


def test_ilsvrc_history_as_the_curriculum_gives_it(warm):
    chart = warm.get("/api/charts/accuracy").json()
    winners = {e["year"]: e["top5_error"] for e in chart["ilsvrc"] if e["kind"] == "winner"}
    assert winners == {2010: 28.2, 2011: 25.8, 2012: 16.4, 2013: 11.7, 2014: 6.7, 2015: 3.57, 2016: 2.99, 2017: 2.25}
    depth = {e["year"]: e["layers"] for e in chart["ilsvrc"] if e["kind"] == "winner" and e["layers"]}
    assert depth == {2012: 8, 2013: 8, 2014: 22, 2015: 152}
    assert [e["top5_error"] for e in chart["ilsvrc"] if e["kind"] == "human"] == [5.1]
    assert all(e["citation"] for e in chart["ilsvrc"]) and len(chart["ilsvrc"]) == len(ilsvrc_results())


def test_model_api_carries_stages(warm):
    body = warm.get("/api/models/resnet50").json()
    assert body["input_shape"] == [1, 3, 224, 224]
    assert sum(s["macs"] for s in body["stages"]) == body["totals"]["macs"] == body["macs"]
    layers = warm.get("/api/models/resnet50/layers").json()["layers"]
    conv1 = next(layer for layer in layers if layer["path"] == "conv1")
    assert [f["kind"] for f in conv1["formulas"]] == ["output_size", "params", "macs"]


def test_layers_csv_download(warm):
    response = warm.get("/api/models/alexnet_paper/layers.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="alexnet_paper-227x227-layers.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    layers = warm.get("/api/models/alexnet_paper/layers").json()["layers"]
    assert [r["path"] for r in rows] == [layer["path"] for layer in layers]
    conv1 = next(r for r in rows if r["path"] == "features.0")
    assert (conv1["output_shape"], conv1["params"], conv1["macs"]) == ("1x96x55x55", "34944", "105415200")
    assert warm.get("/api/models/alexnet_paper/layers.csv?resolution=300").text != response.text


def test_layers_csv_errors_are_json(warm):
    response = warm.get("/api/models/no_such_net/layers.csv")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_model"
    response = warm.get("/api/models/vgg16/layers.csv?resolution=0")
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("url, status, words", [
    ("/models/no_such_net", 404, "no_such_net"),
    ("/models/vgg16?resolution=abc", 422, "resolution"),
    ("/models/vgg16?resolution=99999", 422, "resolution"),
    ("/compare?models=vgg16,no_such_net", 404, "no_such_net"),
    ("/compare?models=vgg11,vgg13,vgg16,vgg19,alexnet,resnet18,resnet50", 422, "1 to 6 model ids"),
    ("/compare?models=,,", 422, "1 to 6 model ids"),
])
def test_bad_pages_explain_themselves(warm, url, status, words):
    response = warm.get(url)
    assert response.status_code == status
    assert response.template.name == "error.html"
    assert words in response.context["message"]
    assert "Traceback" not in response.text


def test_compare_page_add_redirects_to_canonical_address(warm):
    response = warm.get("/compare?models=vgg16,googlenet&add=mobilenet_v2", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/compare?models=vgg16,googlenet,mobilenet_v2"
    assert warm.get("/compare?models=vgg16&add=vgg16", follow_redirects=False).headers["location"] == "/compare?models=vgg16"
    assert warm.get("/compare?models=vgg16&add=nope").status_code == 404


def test_compare_page_without_models_offers_a_start(warm):
    context = _context(warm, "/compare", "compare.html")
    assert context["compare"] is None
    assert any("vgg16,googlenet,mobilenet_v2" in href for href, _ in context["suggestions"])


def test_pages_from_cache_rebuild_nothing(warm, app):
    cache = app.state.analysis_cache
    for url in ["/", "/models/vgg16", "/compare?models=vgg16,googlenet", "/charts/accuracy"]:
        warm.get(url)
    traces = cache.traces
    for url in ["/", "/models/vgg16", "/models/googlenet", "/compare?models=vgg16,googlenet", "/charts/accuracy",
                "/api/charts/accuracy", "/api/models/vgg16/layers.csv"]:
        assert warm.get(url).status_code == 200
    assert cache.traces == traces
