"""What a newcomer tripped over (issue 17), through HTTP: errors that say what to do,
labels that mean what they say, links that keep the page's parameters, lists in
natural order, global receptive fields in the JSON and the lab."""

from __future__ import annotations

import re

import pytest

from app.names import natural_key


def _numbers(names: list[str], prefix: str) -> list[int]:
    return [int(re.search(r"\d+", n).group()) for n in names if n.startswith(prefix) and re.fullmatch(r"ResNet-\d+", n)]


# ---------------------------------------------------------------- errors where they happened

def test_vgg16_at_31_stays_on_the_model_page(client):
    response = client.get("/models/vgg16?resolution=31")
    assert response.status_code == 422
    assert response.template.name == "model.html"
    html = response.text
    assert 'value="31"' in html and 'min="32"' in html  # the form keeps what was typed, and says the floor
    message = response.context["refused"]["message"]
    assert "32×32" in message and "32-fold" in message
    assert "Calculated output size" not in html  # not PyTorch's words
    assert response.context["model"].input_shape == [1, 3, 224, 224]  # the page shows the model at its own size


@pytest.mark.parametrize("model_id, bad, rule", [
    ("vit_b_16", 225, {"smallest": 16, "only": False, "multiple_of": 16}),
    ("lenet5", 64, {"smallest": 32, "only": True, "multiple_of": None}),
    ("inception_v3", 74, {"smallest": 75, "only": False, "multiple_of": None}),
])
def test_input_rule_in_json_and_on_the_page(client, model_id, bad, rule):
    body = client.get(f"/api/models/{model_id}").json()
    assert {k: body["input_rule"][k] for k in rule} == rule
    assert client.get(f"/api/models/{model_id}/layers?resolution={bad}").status_code == 422
    page = client.get(f"/models/{model_id}?resolution={bad}")
    assert page.status_code == 422 and f'value="{bad}"' in page.text
    assert f'min="{rule["smallest"]}"' in page.text
    if rule["only"]:
        assert f'max="{rule["smallest"]}"' in page.text and "only" in page.context["refused"]["message"]
    if rule["multiple_of"]:
        assert f'step="{rule["multiple_of"]}"' in page.text and "Try 240" in page.context["refused"]["message"]
    # the smallest size really traces, one below it really doesn't
    assert client.get(f"/api/models/{model_id}/layers?resolution={rule['smallest']}").status_code == 200
    if rule["smallest"] > 1:
        assert client.get(f"/api/models/{model_id}/layers?resolution={rule['smallest'] - 1}").status_code == 422


@pytest.mark.parametrize("url, heading, suggestion", [
    ("/models/ResNet50", "Model not found", "/models/resnet50"),
    ("/models/resnet-18", "Model not found", "/models/resnet18"),
    ("/models/VGG_16", "Model not found", "/models/vgg16"),
    ("/no/such/page", "Page not found", None),
])
def test_error_pages_speak_to_people(client, url, heading, suggestion):
    response = client.get(url, headers={"referer": "http://testserver/lab"})
    assert response.status_code == 404 and response.template.name == "error.html"
    assert f"<h1>{heading}</h1>" in response.text
    assert "GET /api" not in response.text and "404</h1>" not in response.text  # no API jargon, no bare number
    assert 'href="/lab">Go back' in response.text and 'href="/">Browse the zoo' in response.text
    if suggestion:
        assert f'href="{suggestion}"' in response.text
        assert response.context["suggestions"][0][0] == suggestion.rsplit("/", 1)[1]


def test_api_unknown_model_suggests_the_id(client):
    body = client.get("/api/models/ResNet50").json()
    assert body["error"]["code"] == "unknown_model" and "Did you mean resnet50" in body["error"]["message"]


def test_lab_states_its_limits_up_front(client):
    limits = client.get("/api/lab").json()["limits"]
    assert limits == {"side": 2048, "channels": 8192, "kernel": 31, "layers": 16, "dilation": 64}
    html = client.get("/lab").text
    for name, most in (("channels", 8192), ("layers", 16), ("dilation", 64)):
        assert re.search(rf'name="{name}"[^>]*max="{most}"[^>]*required', html), name
    assert "1–8,192" in html and ", odd" in html
    # what the page allows is what the API takes
    assert client.get("/api/lab/receptive-field?layers=16").status_code == 200
    assert client.get("/api/lab/receptive-field?layers=17").status_code == 422


# ---------------------------------------------------------------- labels

def test_training_estimate_says_activations_only_and_shows_the_rest(client):
    body = client.get("/api/models/vgg16").json()
    weights = body["totals"]["param_bytes"]
    assert weights == 138_357_544 * 4
    activations = body["training_activation_bytes_estimate"]
    by_name = {m["optimizer"]: m for m in body["training_memory"]}
    assert [m["state_per_weight"] for m in body["training_memory"]] == [0, 1, 2]
    adam = by_name["Adam / AdamW"]
    assert (adam["weights"], adam["gradients"], adam["optimizer_state"]) == (weights, weights, 2 * weights)
    assert adam["total"] == 4 * weights + activations
    assert by_name["SGD"]["total"] == 2 * weights + activations
    html = client.get("/models/vgg16").text
    assert "activations only" in html and 'id="training-memory"' in html
    assert "2.3 GB" in html  # Adam: 4 x 553.4 MB + 122 MB


def test_upload_limit_reads_the_same_on_page_and_in_error(client):
    from app.templating import upload_limit
    limit = client.get("/api/predict/models").json()["max_upload_bytes"]
    phrase = upload_limit(limit)
    assert phrase in client.get("/predict").text
    big = b"\0" * (limit + 1)
    error = client.post("/api/predict", files={"file": ("big.png", big, "image/png")}).json()["error"]
    assert error["code"] == "too_large" and phrase in error["message"]


def test_axes_use_si_prefixes_like_the_text(client):
    html = client.get("/compare?models=vgg16,resnet50").text
    assert '"exponentformat": "SI"' in html or '"exponentformat":"SI"' in html


# ---------------------------------------------------------------- receptive fields

def test_layers_json_marks_global_rows(client):
    layers = {r["path"]: r for r in client.get("/api/models/resnet50/layers").json()["layers"]}
    assert (layers["layer4"]["receptive_field"], layers["layer4"]["receptive_field_global"]) == (427, False)
    assert (layers["avgpool"]["receptive_field"], layers["avgpool"]["receptive_field_global"]) == (224, True)
    vit = client.get("/api/models/vit_b_16/layers").json()["layers"]
    assert max(r["receptive_field"] or 0 for r in vit) == 224  # not 2,720
    html = client.get("/models/resnet50").text
    assert "global · 224" in html


def test_lab_last_feature_map_is_before_global_mixing(client):
    body = client.get("/api/lab/receptive-growth", params={"model": "resnet50"}).json()
    assert body["last_feature_map"]["path"] == "layer4"
    assert (body["last_feature_map"]["receptive_field"], body["last_feature_map"]["jump"]) == (427, 32)
    assert body["points"][-1]["path"] == "avgpool" and body["points"][-1]["receptive_field_global"]
    vit = client.get("/api/lab/receptive-growth", params={"model": "vit_b_16"}).json()
    assert "Dropout" not in [p["type"] for p in vit["points"]]  # attention widens the view, not the Dropout after it
    assert vit["points"][-1]["type"] == "MultiheadAttention" and vit["points"][-1]["receptive_field"] == 224
    assert vit["last_feature_map"]["path"] == "conv_proj"


# ---------------------------------------------------------------- links and lists

def test_model_page_links_keep_the_resolution(client):
    html = client.get("/models/vgg16?resolution=160").text
    for href in ("/api/models/vgg16?resolution=160", "/api/models/vgg16/layers?resolution=160",
                 "/api/models/vgg16/layers.csv?resolution=160"):
        assert f'href="{href}"' in html


def test_speed_links_keep_dtype_and_budget(client):
    html = client.get("/speed?dtype=bfloat16&channels_last=true&budget_ms=20").text
    assert 'href="/api/speed?budget_ms=20.0&amp;dtype=bfloat16&amp;channels_last=true"' in html
    assert 'href="/speed?budget_ms=20.0&amp;dtype=bfloat16&amp;channels_last=true&amp;model=resnet50#detail"' in html


def test_pickers_sort_naturally(client):
    speed = [r["name"] for r in client.get("/api/speed").json()["rows"]]
    lab = [m["name"] for m in client.get("/api/lab").json()["models"]]
    predict = [m["name"] for m in client.get("/api/predict/models").json()["models"]]
    for names in (speed, lab, [m for m in predict]):
        resnets = _numbers(names, "ResNet-")
        assert resnets == sorted(resnets) and resnets[:4] == [18, 34, 50, 101], resnets
    assert speed == sorted(speed, key=natural_key) and lab == sorted(lab, key=natural_key)


def test_duplicate_ids_in_a_compare_are_merged(client):
    body = client.get("/api/compare?models=vgg16,resnet50,vgg16").json()
    assert [m["id"] for m in body["models"]] == ["vgg16", "resnet50"]
    assert client.get("/compare?models=vgg16,vgg16").context["compare"].models[0].id == "vgg16"
    assert len(client.get("/compare?models=vgg16,vgg16").context["compare"].models) == 1


def test_docs_have_a_way_back(client):
    html = client.get("/docs").text
    assert 'href="/">&larr; Back to ConvZoo</a>' in html and '<html lang="en">' in html


def test_the_model_page_never_waits_long_for_the_input_rule(client):
    """Finding the sizes a big net takes is a dozen traces (LeViT: over a second), run in the analysis
    pool: the page answers without it and says it is being worked out; the JSON twin waits for
    it; then the page has it too."""
    page = client.get("/models/timm-levit_128s")
    assert page.status_code == 200 and "is being worked out" in page.text
    assert page.context["model"].input_rule is None
    body = client.get("/api/models/timm-levit_128s").json()
    assert {k: body["input_rule"][k] for k in ("smallest", "only", "multiple_of")} == {
        "smallest": 16, "only": False, "multiple_of": 16}
    again = client.get("/models/timm-levit_128s")
    assert "is being worked out" not in again.text and 'step="16"' in again.text
