"""A typed nn.Sequential: parsed (never run), counted like a zoo model, and
errors a student can act on; the same explanations for zoo models that
cannot take a resolution."""

from __future__ import annotations

import pytest

from models.sequential import PRESETS


def _post(client, code: str, input_size=(3, 32, 32)):
    return client.post("/api/custom/sequential", json={"code": code, "input": list(input_size)})


def _message(response) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_sequential"
    return response.json()["error"]["message"]


def test_lenet5_preset_is_the_zoo_lenet5(client):
    _, shape, code = PRESETS["lenet5"]
    response = _post(client, code, shape)
    assert response.status_code == 200, response.text
    data = response.json()
    zoo = client.get("/api/models/lenet5/layers").json()
    assert data["totals"] == zoo["totals"]
    assert data["totals"]["params"] == 61_706
    ours = [(r["type"], r["output_shape"], r["params"], r["macs"], r["receptive_field"])
            for r in data["layers"] if r["is_leaf"]]
    theirs = [(r["type"], r["output_shape"], r["params"], r["macs"], r["receptive_field"])
              for r in zoo["layers"] if r["is_leaf"]]
    assert ours == theirs
    # The id works like a zoo id: the model page, its layers, compare.
    model_id = data["id"]
    assert client.get(data["url"]).status_code == 200
    assert client.get(f"/api/models/{model_id}/layers").json()["totals"] == data["totals"]
    compare = client.get(f"/api/compare?models=lenet5,{model_id}").json()
    assert [m["macs"] for m in compare["models"]] == [zoo["totals"]["macs"]] * 2


def test_alexnet_conv1_preset_matches_the_slides(client):
    _, shape, code = PRESETS["alexnet_conv1"]
    data = _post(client, code, shape).json()
    conv, relu, pool = data["layers"]
    assert conv["output_shape"] == [1, 96, 55, 55] and conv["params"] == 34_944
    assert conv["macs"] == 55 * 55 * 96 * 11 * 11 * 3 == 105_415_200
    assert pool["output_shape"] == [1, 96, 27, 27]
    assert (conv["receptive_field"], conv["jump"], pool["receptive_field"], pool["jump"]) == (11, 4, 19, 8)
    output_size = next(f for f in conv["formulas"] if f["kind"] == "output_size")
    assert output_size["value"] == [55, 55]


@pytest.mark.parametrize("code, expected", [
    ("nn.Sequential(\n    nn.Conv2d(3, 6, 5),\n    nn.Tanh() nn.ReLU(),\n)", "line 3, column 5: syntax error: invalid syntax. Perhaps you forgot a comma?"),
    ("nn.Sequential(\n    nn.Conv2d(3, 6, 5),\n    nn.Frobnicate(2),\n)", "line 3, column 5: unknown layer `nn.Frobnicate`"),
    ("nn.Sequential(nn.Conv2d(3, 6, 5, strde=2))", "Conv2d has no argument `strde`"),
    ("nn.Sequential(nn.Conv2d(3, 6, kernel))", "only literal arguments"),
    ("nn.Sequential(nn.Conv2d(3, 6, 5), __import__('os').system('touch /tmp/convzoo-pwned'))", "unknown layer `__import__('os').system`"),
    # Arguments PyTorch needs as positive whole numbers: checked on the text, before PyTorch sees them.
    ("nn.Sequential(nn.Conv2d(3, 8.5, 3))", "line 1, column 28: Conv2d: out_channels must be a whole number >= 1; got 8.5"),
    ("nn.Sequential(\n    nn.Conv2d(3,8,8.5))", "line 2, column 19: Conv2d: kernel_size must be a whole number >= 1 (or a tuple of them); got 8.5"),
    ("nn.Sequential(nn.Conv2d(3,-8,3))", "line 1, column 27: Conv2d: out_channels must be a whole number >= 1; got -8"),
    ("nn.Sequential(nn.MaxPool2d(2, stride=(2, 0)))", "line 1, column 38: MaxPool2d: stride must be a whole number >= 1 (or a tuple of them); got 0"),
    ("nn.Sequential(nn.Flatten(), nn.Linear(in_features=True, out_features=10))", "line 1, column 51: Linear: in_features must be a whole number >= 1; got True"),
])
def test_text_errors_say_where_and_what(client, code, expected):
    assert expected in _message(_post(client, code))


def test_nothing_in_the_text_is_executed(client, tmp_path):
    marker = tmp_path / "ran"
    code = f"nn.Sequential(nn.Conv2d(3, 6, 5, padding=open({str(marker)!r}, 'w')))"
    assert "only literal arguments" in _message(_post(client, code))
    assert not marker.exists()


def test_shape_mismatch_is_explained_in_words(client):
    _, _, code = PRESETS["lenet5"]
    message = _message(_post(client, code, (1, 28, 28)))
    assert "the first Linear (layer 7) expects 400 features and the layer before gives 16x4x4 = 256" in message
    message = _message(_post(client, "nn.Sequential(nn.Conv2d(3, 6, 5), nn.Conv2d(8, 16, 3))"))
    assert "expects 8 input channels and the layer before gives 6 (a 6x28x28 map)" in message
    message = _message(_post(client, "nn.Sequential(nn.Conv2d(3, 6, 5), nn.Linear(6, 10))"))
    assert "Put nn.Flatten() before it" in message


def test_zoo_models_that_cannot_take_a_resolution_are_explained(client):
    lenet = client.get("/api/models/lenet5?resolution=28").json()["error"]["message"]
    assert "takes 32×32 pixels only" in lenet  # the measured rule (models/resolution.py), then where it fails:
    assert "the first Linear (classifier.1) expects 400 features and the layer before gives 16x4x4 = 256" in lenet
    assert "same reduction dim" not in lenet
    maxvit = client.get("/api/models/maxvit_t?resolution=256").json()["error"]["message"]
    assert "got a 1x64x64x64 input" in maxvit and "64 is not a multiple of 7" in maxvit
    assert "is invalid for input of size" not in maxvit


def test_custom_page_and_its_twin(client):
    data = client.get("/api/custom").json()
    assert [p["key"] for p in data["presets"]] == ["lenet5", "alexnet_conv1"]
    assert "Conv2d" in data["layers"] and "Conv" in data["onnx_ops"]
    page = client.get("/custom")
    assert page.status_code == 200 and "drop-zone" in page.text and "LeNet-5" in page.text
