"""The zoo's JSON API (shared/API.md) through HTTP: catalog exactness against
torchvision's own metadata, per-layer analysis, resolutions, compare, errors."""

import json

import pytest
import torchvision
from torchvision.models import get_model_weights
from tests.conftest import analyse_course_models

TORCHVISION_IDS = torchvision.models.list_models(module=torchvision.models)
CARD_FIELDS = {"id", "name", "family", "year", "source", "input_size", "params", "macs", "top1", "top5",
               "accuracy_source", "weights"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture(scope="module")
def catalog(client) -> dict[str, dict]:
    analyse_course_models(client.app)
    response = client.get("/api/models")
    assert response.status_code == 200
    return {card["id"]: card for card in response.json()["models"]}


def test_health(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["device"] == "cpu"
    assert body["versions"]["torch"] and body["versions"]["torchvision"]


def test_catalog_holds_every_torchvision_model_and_the_course_extras(catalog):
    assert len(TORCHVISION_IDS) == 80
    assert set(TORCHVISION_IDS) <= set(catalog)
    extras = {"lenet5", "alexnet_paper", "zfnet", "nin", "inception_v4", "inception_resnet_v2", "xception",
              "nasnetalarge", "senet154", "mobilenet_v1", "efficientnet_lite0",
              "efficientnet_lite1", "efficientnet_lite2"}
    assert extras <= set(catalog)
    for card in catalog.values():
        assert CARD_FIELDS <= set(card)
        assert card["source"] in {"torchvision", "timm", "classic"}
        assert card["weights"] in {"available", "downloadable", "none"}
        if not card["id"].startswith("timm-"):  # timm's whole zoo: counted once analysed
            assert isinstance(card["params"], int) and isinstance(card["macs"], int)
    assert {catalog[f"efficientnet_lite{i}"]["weights"] for i in range(3)} == {"available"}
    assert [catalog[f"efficientnet_lite{i}"]["top1"] for i in range(3)] == [75.1, 76.7, 77.6]
    assert catalog["lenet5"]["top1"] is None and catalog["lenet5"]["accuracy_source"] is None


@pytest.mark.parametrize("model_id", TORCHVISION_IDS)
def test_torchvision_params_exact_and_macs_match_metadata(catalog, model_id):
    weights = get_model_weights(model_id).DEFAULT
    card = catalog[model_id]
    assert card["params"] == weights.meta["num_params"]
    listed_gmacs = weights.meta["_ops"]
    # _ops is rounded to 3 decimals: for the tiniest nets the rounding is the tolerance.
    assert abs(card["macs"] / 1e9 - listed_gmacs) <= max(0.01 * listed_gmacs, 0.0005)
    metrics = weights.meta["_metrics"]["ImageNet-1K"]
    assert (card["top1"], card["top5"], card["accuracy_source"]) == (metrics["acc@1"], metrics["acc@5"], "torchvision")
    assert card["input_size"] == [3, *[weights.transforms().crop_size[0]] * 2]


def test_inputs_sized_by_the_weights(catalog):
    assert catalog["inception_v3"]["input_size"] == [3, 299, 299]
    assert catalog["vit_h_14"]["input_size"] == [3, 518, 518]
    assert catalog["alexnet_paper"]["input_size"] == [3, 227, 227]
    assert catalog["lenet5"]["input_size"] == [1, 32, 32]


def test_model_card(client, catalog):
    body = client.get("/api/models/vgg16").json()
    assert {k: body[k] for k in CARD_FIELDS} == {k: catalog["vgg16"][k] for k in CARD_FIELDS}
    assert body["totals"]["params"] == 138_357_544
    assert body["flops"] == 2 * body["totals"]["macs"]
    assert body["paper"] == "Very Deep Convolutional Networks for Large-Scale Image Recognition"


def test_layers_match_the_contract_example(client):
    body = client.get("/api/models/vgg16/layers").json()
    assert body["id"] == "vgg16" and body["input_shape"] == [1, 3, 224, 224]
    first_conv = next(layer for layer in body["layers"] if layer["path"] == "features.0")
    assert {k: first_conv[k] for k in ("type", "depth", "is_leaf", "output_shape", "params", "macs",
                                       "activation_elements")} == {
        "type": "Conv2d", "depth": 2, "is_leaf": True, "output_shape": [1, 64, 224, 224],
        "params": 1792, "macs": 86_704_128, "activation_elements": 3_211_264}
    totals = body["totals"]
    assert totals["params"] == totals["trainable_params"] == 138_357_544
    assert totals["param_bytes"] == 4 * totals["params"]
    assert totals["activation_bytes"] == 4 * totals["activation_elements"]
    # Execution order: features before avgpool before classifier.
    top = [layer["path"] for layer in body["layers"] if layer["depth"] == 1]
    assert top == ["features", "avgpool", "classifier"]


def test_vit_counts_its_attention_matmuls(client):
    totals = client.get("/api/models/vit_b_16/layers").json()["totals"]
    assert round(totals["macs"] / 1e9, 2) == 17.56  # torchinfo sees 0.17: it misses the functional ops


@pytest.mark.parametrize("resolution", [128, 160, 192])
def test_mobilenet_at_smaller_resolutions(client, resolution):
    full = client.get("/api/models/mobilenet_v2/layers").json()["totals"]
    body = client.get(f"/api/models/mobilenet_v2/layers?resolution={resolution}").json()
    assert body["input_shape"] == [1, 3, resolution, resolution]
    assert body["totals"]["params"] == full["params"]
    assert body["totals"]["macs"] < full["macs"]


def test_resnet50_at_448_costs_four_times_as_much(client):
    base = client.get("/api/models/resnet50/layers").json()
    big = client.get("/api/models/resnet50/layers?resolution=448").json()
    fc = 2048 * 1000  # the classifier after global pooling does not grow with the input
    assert big["totals"]["macs"] - fc == 4 * (base["totals"]["macs"] - fc)


@pytest.mark.parametrize("url", [
    "/api/models/lenet5/layers?resolution=16",
    "/api/models/vgg16/layers?resolution=16",
    "/api/models/vgg16/layers?resolution=0",
    "/api/models/vgg16/layers?resolution=abc",
    "/api/models/vgg16/layers?resolution=100000",
    "/api/models/vgg16/layers?resolution=-3",
    "/api/models/vgg16/layers?resolution=22.5",
])
def test_resolutions_a_net_cannot_take(client, url):
    error = assert_error(client.get(url), 422, "invalid_parameter")
    assert "resolution" in error["message"].lower() or "input" in error["message"].lower()


@pytest.mark.parametrize("url", ["/api/models/nope", "/api/models/nope/layers", "/api/compare?models=vgg16,nope"])
def test_unknown_models(client, url):
    error = assert_error(client.get(url), 404, "unknown_model")
    assert "nope" in error["message"]


def test_compare_keeps_the_order_asked(client):
    body = client.get("/api/compare?models=mobilenet_v2,vgg16,googlenet").json()
    assert [m["id"] for m in body["models"]] == ["mobilenet_v2", "vgg16", "googlenet"]
    assert body["models"][1]["totals"]["params"] == 138_357_544


@pytest.mark.parametrize("url", ["/api/compare", "/api/compare?models=", "/api/compare?models=a,b,c,d,e,f,g"])
def test_compare_needs_one_to_six_models(client, url):
    assert_error(client.get(url), 422, "invalid_parameter")


@pytest.mark.parametrize("url, told", [
    ("/api/compare?models=a,b,c,d,e,f,g", "models: expected 1 to 6 model ids, comma-separated, e.g. vgg16,googlenet, "
                                          "got 'a,b,c,d,e,f,g'"),
    ("/api/models?params_min=lots", "params_min: expected a count, e.g. 5000000, 5M, 1.5G, got 'lots'")])
def test_a_parameter_of_the_wrong_form_is_told_what_it_takes_not_a_regex(client, url, told):
    message = client.get(url).json()["error"]["message"]
    assert told in message and "pattern" not in message and "^" not in message


def test_a_second_request_does_no_tracing(client, app):
    cache = app.state.analysis_cache
    client.get("/api/models/resnet18/layers?resolution=200")
    traces = cache.traces
    assert client.get("/api/models/resnet18/layers?resolution=200").status_code == 200
    assert cache.traces == traces
    files = list(cache.directory.glob(f"resnet18-200x200-{cache.versions}.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["input_shape"] == [1, 3, 200, 200]


def test_a_fresh_cache_on_the_same_directory_reads_from_disk(settings):
    from app.analysis_cache import AnalysisCache
    from models.registry import get_entry

    cache = AnalysisCache(settings.cache_dir)
    cache.get(get_entry("vgg16"))
    assert cache.traces == 0


def test_warmup_reports_progress_and_resumes_from_disk(tmp_path):
    from app.analysis_cache import AnalysisCache
    from app.analysis_pool import AnalysisPool
    from app.state_store import StateStore
    from app.warmup import Warmup
    from models.registry import get_entry

    entries = [get_entry("lenet5"), get_entry("alexnet_paper"), get_entry("nin")]
    store = StateStore(tmp_path / "state.sqlite3")
    pool = AnalysisPool(1)
    try:
        cache = AnalysisCache(tmp_path, pool=pool)
        cache.get(entries[0])  # analysed before the warm-up, e.g. by a run that stopped
        progress = Warmup(cache, store).run(entries)
        assert (progress.done, progress.total, progress.failed, progress.running) == (3, 3, [], False)
        assert progress.analysed_now == 2  # lenet5 was on disk already
        # Any process reading the store sees the same; the pool wrote the files.
        assert Warmup(AnalysisCache(tmp_path, pool=pool), StateStore(tmp_path / "state.sqlite3")).progress == progress
        assert all(cache.path_for(entry, None).exists() for entry in entries)
        again = Warmup(cache, store).run(entries)
        assert (again.done, again.analysed_now) == (3, 0)
        assert cache.peek_totals(entries[1]).params == 60_965_224  # AlexNet as published: ~61 M
    finally:
        pool.shutdown()


def test_warmup_also_analyses_a_timm_entry_at_its_top1_side(tmp_path):
    """The accuracy chart plots timm's MACs at the side the top-1 was measured
    at: the warm-up analyses it there too, after the model's own size."""
    from app.analysis_cache import AnalysisCache
    from app.analysis_pool import AnalysisPool
    from app.state_store import StateStore
    from app.warmup import Warmup, top1_side
    from models.registry import get_entry

    entry = get_entry("timm-mobilenetv1_125")
    assert (tuple(entry.input_size), top1_side(entry)) == ((3, 224, 224), 256)  # timm's results tables
    pool = AnalysisPool(1)
    try:
        cache = AnalysisCache(tmp_path, pool=pool)
        progress = Warmup(cache, StateStore(tmp_path / "state.sqlite3")).run([entry])
        assert (progress.done, progress.total, progress.failed, progress.analysed_now) == (1, 1, [], 2)
        own, at_top1 = cache.peek_totals(entry), cache.peek_totals(entry, 256)
        assert at_top1.params == own.params and at_top1.macs > own.macs
        assert Warmup(cache, StateStore(tmp_path / "state.sqlite3")).run([entry]).analysed_now == 0  # resumes
    finally:
        pool.shutdown()


def test_a_row_without_its_kernel_size_gets_no_formulas_not_a_500(client):
    """timm's MViTv2 gives its shortcut pools' kernel_size as a list, which the analysis does
    not record: those rows answer without formulas (they 500'd the layers, compare and model
    page under bench/load.py), the other rows keep theirs."""
    layers = client.get("/api/models/timm-mvitv2_tiny/layers")
    assert layers.status_code == 200, layers.text
    rows = {row["path"]: row for row in layers.json()["layers"]}
    pool = rows["stages.1.blocks.0.shortcut_pool_attn"]
    assert pool["type"] == "MaxPool2d" and "kernel_size" not in pool["attributes"] and pool["formulas"] == []
    assert any(row["formulas"] for row in rows.values() if row["type"] == "Conv2d")
    assert client.get("/api/compare?models=timm-mvitv2_tiny,resnet18").status_code == 200
    assert client.get("/models/timm-mvitv2_tiny").status_code == 200
