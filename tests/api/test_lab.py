"""The lab's JSON API: the course's exact figures, the closed-form formulas
against the engine's counts on many more cases, real torch shapes for the
output-size rule, MobileNet v1's grid against the paper, and the error shape."""

from __future__ import annotations

import json
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from models.registry import get_entry

INCEPTION = "/api/lab/inception"


def inception(client, **params):
    response = client.get(INCEPTION, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response, status=422, code="invalid_parameter") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]["message"]


# ------------------------------------------------------------ course figures


def test_curriculum_480_to_48_5x5_on_14x14(client):
    base = dict(height=14, width=14, channels=480, c1=0, c3r=0, c3=0, c5=48, pool_proj=0, pool=False)
    naive = inception(client, **base, c5r=0)
    reduced = inception(client, **base, c5r=16)
    assert naive["total"]["weights"] == 576_000
    assert naive["total"]["macs"] == 112_896_000
    assert reduced["total"]["weights"] == 26_880
    assert reduced["total"]["macs"] == 5_268_480
    assert [layer["kind"] for layer in reduced["branches"][0]["layers"]] == ["conv1x1", "conv5x5"]


def test_curriculum_32_5x5_on_28x28x192(client):
    base = dict(height=28, width=28, channels=192, c1=0, c3r=0, c3=0, c5=32, pool_proj=0, pool=False)
    assert inception(client, **base, c5r=0)["total"]["macs"] == 120_422_400
    assert inception(client, **base, c5r=16)["total"]["macs"] == 12_443_648


def test_googlenet_3a_exact_shape_and_numbers(client):
    body = inception(client, height=28, width=28, channels=192, c1=64, c3r=96, c3=128, c5r=16, c5=32, pool_proj=32)
    assert set(body) == {"input_shape", "output_shape", "branches", "total"}
    assert body["input_shape"] == [192, 28, 28]
    assert body["output_shape"] == [256, 28, 28]
    assert [b["name"] for b in body["branches"]] == ["1x1", "3x3", "5x5", "pool"]
    for branch in body["branches"]:
        assert set(branch) == {"name", "layers", "weights", "macs", "output_channels"}
        for layer in branch["layers"]:
            assert set(layer) == {"kind", "in_channels", "out_channels", "weights", "biases", "macs"}
    pool = body["branches"][3]
    assert pool["layers"] == [
        {"kind": "maxpool3x3", "in_channels": 192, "out_channels": 192, "weights": 0, "biases": 0, "macs": 0},
        {"kind": "conv1x1", "in_channels": 192, "out_channels": 32, "weights": 6144, "biases": 32,
         "macs": 784 * 6144},
    ]
    hw = 28 * 28
    weights = 192 * 64 + (192 * 96 + 9 * 96 * 128) + (192 * 16 + 25 * 16 * 32) + 192 * 32
    assert body["total"] == {"weights": weights, "biases": 64 + 96 + 128 + 16 + 32 + 32, "macs": hw * weights}
    assert body["total"]["macs"] == 128_049_152


def test_naive_module_grows_and_pool_passes_through(client):
    body = inception(client, height=28, width=28, channels=192, c1=64, c3r=0, c3=128, c5r=0, c5=32, pool_proj=0)
    assert body["output_shape"] == [64 + 128 + 32 + 192, 28, 28]  # the pool keeps its input depth
    assert body["branches"][3]["output_channels"] == 192 and body["branches"][3]["weights"] == 0
    assert [layer["kind"] for layer in body["branches"][1]["layers"]] == ["conv3x3"]  # reduction 0: no 1x1


def test_zero_filters_drop_a_branch(client):
    body = inception(client, height=7, width=7, channels=8, c1=0, c3r=4, c3=0, c5r=0, c5=4, pool_proj=2)
    assert [b["name"] for b in body["branches"]] == ["5x5", "pool"]
    assert body["output_shape"] == [6, 7, 7]
    pool_only = inception(client, height=7, width=7, channels=8, c1=0, c3r=4, c3=0, c5r=4, c5=0, pool_proj=0)
    assert [b["name"] for b in pool_only["branches"]] == ["pool"]
    assert pool_only["output_shape"] == [8, 7, 7] and pool_only["total"] == {"weights": 0, "biases": 0, "macs": 0}


def _closed_form(h, w, c, c1, c3r, c3, c5r, c5, pool_proj):
    """The slides' formulas, written out independently of the engine."""
    layers = []
    if c1:
        layers.append((1, c, c1))
    for reduction, filters, k in ((c3r, c3, 3), (c5r, c5, 5)):
        if filters:
            if reduction:
                layers.append((1, c, reduction))
            layers.append((k, reduction or c, filters))
    if pool_proj:
        layers.append((1, c, pool_proj))
    weights = sum(k * k * cin * cout for k, cin, cout in layers)
    out = c1 + c3 + c5 + (pool_proj or c)
    return weights, sum(cout for _, _, cout in layers), h * w * weights, out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 40), w=st.integers(1, 40), c=st.integers(1, 600),
       filters=st.lists(st.integers(0, 300), min_size=6, max_size=6))
def test_formulas_equal_engine_counts(client, h, w, c, filters):
    c1, c3r, c3, c5r, c5, pool_proj = filters
    body = inception(client, height=h, width=w, channels=c, c1=c1, c3r=c3r, c3=c3, c5r=c5r, c5=c5,
                     pool_proj=pool_proj)
    weights, biases, macs, out = _closed_form(h, w, c, c1, c3r, c3, c5r, c5, pool_proj)
    assert body["total"] == {"weights": weights, "biases": biases, "macs": macs}
    assert body["output_shape"] == [out, h, w]
    for branch in body["branches"]:
        for layer in branch["layers"]:
            k = int(layer["kind"][-1]) if layer["kind"].startswith("conv") else 0
            assert layer["weights"] == k * k * layer["in_channels"] * layer["out_channels"]
            assert layer["macs"] == h * w * layer["weights"]


def test_bottleneck_pairs_naive_with_reduced(client):
    params = dict(height=28, width=28, channels=192, c1=64, c3r=96, c3=128, c5r=16, c5=32, pool_proj=32)
    body = client.get("/api/lab/bottleneck", params=params).json()
    assert body["reduced"] == inception(client, **params)
    assert body["naive"] == inception(client, **{**params, "c3r": 0, "c5r": 0, "pool_proj": 0})
    assert body["naive"]["output_shape"][0] == 416
    assert body["macs_ratio"] == round(body["naive"]["total"]["macs"] / body["reduced"]["total"]["macs"], 4)
    assert body["figure"]["layout"]["yaxis"]["title"]["text"] == "multiply-adds (MACs)"
    assert [t["y"] for t in body["figure"]["data"]] == [[b["macs"] for b in body[k]["branches"]]
                                                       for k in ("naive", "reduced")]


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize("params, words", [
    (dict(height=-1), "height"),
    (dict(channels=0), "channels"),
    (dict(width="2.5"), "valid integer"),
    (dict(c3="many"), "valid integer"),
    (dict(height=10**9), "less than or equal"),
    (dict(c5=10**6), "less than or equal"),
    (dict(c1=0, c3=0, c5=0, pool="false"), "Every branch is left out"),
])
def test_bad_inception_parameters(client, params, words):
    base = dict(height=28, width=28, channels=192, c1=64, c3r=96, c3=128, c5r=16, c5=32, pool_proj=32)
    message = error_of(client.get(INCEPTION, params={**base, **params}))
    assert words in message


def test_missing_parameter_is_named(client):
    assert "channels" in error_of(client.get(INCEPTION, params=dict(height=1, width=1)))


@pytest.mark.parametrize("url, words", [
    ("/api/lab/output-size?size=5&kernel=9", "nowhere to put it"),
    ("/api/lab/output-size?size=5&kernel=2&padding=2&stride=2&op=maxpool", "PyTorch refuses"),
    ("/api/lab/output-size?size=5&kernel=3&op=conv&ceil_mode=true", "pooling only"),
    ("/api/lab/output-size?size=5&kernel=3&op=fft", "op"),
    ("/api/lab/output-size?size=5&kernel=3&stride=0", "stride"),
    ("/api/lab/receptive-field?kernel=4", "odd"),
    ("/api/lab/receptive-field?layers=100", "layers"),
    ("/api/lab/factorised?n=1", "at least 3"),
    ("/api/lab/separable?in_channels=-5", "in_channels"),
])
def test_bad_lesson_parameters(client, url, words):
    assert words in error_of(client.get(url))


# ------------------------------------------------------------- output size

OUTPUT_CASES = [
    # op, size, kernel, padding, stride, dilation, ceil_mode
    ("conv", 227, 11, 0, 4, 1, False),    # AlexNet CONV1: (227 - 11)/4 + 1 = 55
    ("conv", 224, 11, 2, 4, 1, False),    # torchvision's AlexNet: 55.25 floors to 55
    ("conv", 224, 7, 3, 2, 1, False),     # ResNet stem
    ("conv", 28, 3, 2, 1, 2, False),      # dilated
    ("conv", 17, 5, 0, 3, 2, False),
    ("maxpool", 112, 3, 0, 2, 1, True),   # GoogLeNet: 54.5 + 1 rounds up to 56
    ("maxpool", 112, 3, 0, 2, 1, False),
    ("maxpool", 5, 2, 1, 2, 1, True),     # ceil would give 4; the last window starts in the padding: 3
    ("maxpool", 6, 3, 1, 2, 2, True),
    ("avgpool", 7, 2, 0, 2, 1, True),
    ("avgpool", 8, 3, 1, 3, 1, True),
    ("avgpool", 13, 3, 0, 2, 1, False),
]


def _real_torch(op, size, kernel, padding, stride, dilation, ceil_mode) -> int:
    if op == "conv":
        layer = nn.Conv2d(1, 1, kernel, stride, padding, dilation)
    elif op == "maxpool":
        layer = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    else:
        layer = nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode)
    with torch.no_grad():
        return layer(torch.zeros(1, 1, size, size)).shape[-1]


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_output_size_matches_real_torch(client, case):
    op, size, kernel, padding, stride, dilation, ceil_mode = case
    body = client.get("/api/lab/output-size", params=dict(
        op=op, size=size, kernel=kernel, padding=padding, stride=stride, dilation=dilation,
        ceil_mode=str(ceil_mode).lower())).json()
    expected = _real_torch(*case)
    assert body["output"] == body["torch_output"] == expected
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1
    assert body["numerator"] == numerator
    assert body["exact"] == (numerator % stride == 0)
    assert body["floor"] == numerator // stride + 1


def test_output_size_explains_the_rounding(client):
    alexnet = client.get("/api/lab/output-size", params=dict(size=227, kernel=11, stride=4)).json()
    assert alexnet["output"] == 55 and alexnet["exact"]
    assert any("(227 - 11 + 2*0)/4 + 1 = 216/4 + 1" in step for step in alexnet["steps"])
    floored = client.get("/api/lab/output-size", params=dict(size=224, kernel=11, padding=2, stride=4)).json()
    assert not floored["exact"] and floored["output"] == 55
    assert any("PyTorch floors" in step for step in floored["steps"])
    dropped = client.get("/api/lab/output-size", params=dict(op="maxpool", size=5, kernel=2, padding=1, stride=2,
                                                             ceil_mode="true")).json()
    assert dropped["ceil"] == 4 and dropped["output"] == 3 and dropped["last_window_dropped"]
    assert any("drops it" in step for step in dropped["steps"])


# ---------------------------------------------- receptive field, factorised, separable


@pytest.mark.parametrize("layers, kernel, channels", [(2, 3, 64), (3, 3, 64), (3, 3, 1), (4, 5, 12), (1, 7, 3)])
def test_stacked_kernels(client, layers, kernel, channels):
    body = client.get("/api/lab/receptive-field",
                      params=dict(layers=layers, kernel=kernel, channels=channels, size=20)).json()
    side = layers * (kernel - 1) + 1
    assert body["stack"]["receptive_fields"] == [i * (kernel - 1) + 1 for i in range(1, layers + 1)]
    assert body["stack"]["receptive_field"] == body["single"]["receptive_field"] == side
    assert body["stack"]["weights"] == layers * kernel * kernel * channels * channels
    assert body["single"]["weights"] == side * side * channels * channels
    assert body["stack"]["macs"] == 400 * body["stack"]["weights"]
    assert (body["stack"]["nonlinearities"], body["single"]["nonlinearities"]) == (layers, 1)


def test_three_3x3_against_one_7x7(client):
    body = client.get("/api/lab/receptive-field", params=dict(layers=3, kernel=3, channels=64)).json()
    assert body["stack"]["receptive_field"] == 7
    assert body["stack"]["weights"] == 27 * 64 * 64 and body["single"]["weights"] == 49 * 64 * 64
    assert body["weights_ratio"] == round(49 / 27, 4) == 1.8148


@pytest.mark.parametrize("n, channels, filters, size", [(5, 64, 64, 17), (3, 32, 48, 9), (7, 160, 192, 17)])
def test_factorised(client, n, channels, filters, size):
    body = client.get("/api/lab/factorised", params=dict(n=n, channels=channels, filters=filters, size=size)).json()
    full, threes, asym = body["variants"]
    hw = size * size
    assert full["weights"] == n * n * channels * filters
    assert threes["weights"] == 9 * channels * filters + ((n - 1) // 2 - 1) * 9 * filters * filters
    assert asym["weights"] == n * channels * filters + n * filters * filters
    assert [v["receptive_field"] for v in body["variants"]] == [n, n, n]
    for v in body["variants"]:
        assert v["macs"] == hw * v["weights"]
    if n == 5 and channels == filters:
        assert threes["weights"] / full["weights"] == 18 / 25  # two 3x3: 28% fewer


@pytest.mark.parametrize("n, m, k, size", [(512, 512, 3, 14), (32, 64, 3, 112), (3, 10, 5, 7), (728, 728, 3, 19)])
def test_separable(client, n, m, k, size):
    body = client.get("/api/lab/separable", params=dict(in_channels=n, out_channels=m, kernel=k, size=size)).json()
    assert body["standard"]["weights"] == n * k * k * m
    assert body["separable"]["weights"] == n * (k * k + m)
    assert [layer["kind"] for layer in body["separable"]["layers"]] == [f"depthwise{k}x{k}", "conv1x1"]
    assert body["standard"]["macs"] == size * size * n * k * k * m
    assert body["separable"]["macs"] == size * size * n * (k * k + m)
    assert body["weights_ratio"] == round(1 / m + 1 / (k * k), 4)
    assert "N input channels, M output channels" in body["naming"]


# ------------------------------------------------------------- MobileNet v1

# Howard et al. 2017, Table 6 (width) and Table 7 (resolution): million mult-adds, million parameters.
# The paper's mult-adds are rounded one way or the other (568.7 is "569", 290.7 is "290"): within 1 M.
PAPER_WIDTH = {1.0: (569, 4.2), 0.75: (325, 2.6), 0.5: (149, 1.3), 0.25: (41, 0.5)}
PAPER_RESOLUTION = {224: 569, 192: 418, 160: 290, 128: 186}


def test_mobilenet_grid_matches_the_paper(client):
    body = client.get("/api/lab/mobilenet").json()
    cells = {(c["multiplier"], c["resolution"]): c for c in body["cells"]}
    assert len(cells) == 16
    for multiplier, (macs_m, params_m) in PAPER_WIDTH.items():
        cell = cells[(multiplier, 224)]
        assert abs(cell["macs"] / 1e6 - macs_m) < 1
        assert round(cell["params"] / 1e6, 1) == params_m
    for resolution, macs_m in PAPER_RESOLUTION.items():
        assert abs(cells[(1.0, resolution)]["macs"] / 1e6 - macs_m) < 1
    # 1.0 at 224 is the zoo's own mobilenet_v1, counted the same way.
    zoo = client.get("/api/models/mobilenet_v1").json()
    assert (cells[(1.0, 224)]["params"], cells[(1.0, 224)]["macs"]) == (zoo["params"], zoo["macs"])
    assert cells[(1.0, 224)]["params"] == 4_231_976 and cells[(1.0, 224)]["macs"] == 568_740_352
    for multiplier in PAPER_WIDTH:  # resolution leaves the parameters alone
        assert len({cells[(multiplier, r)]["params"] for r in PAPER_RESOLUTION}) == 1


# ------------------------------------------------------------- page and links


def test_page_embeds_the_api_body(client):
    page = client.get("/lab")
    assert page.status_code == 200
    embedded = re.search(r'<script type="application/json" id="lab-data">(.*?)</script>', page.text, re.S)
    assert json.loads(embedded.group(1)) == client.get("/api/lab").json()


def test_page_links_to_the_zoo(client):
    body = client.get("/api/lab").json()
    page = client.get("/lab").text
    expected = {"bottleneck": {"googlenet", "inception_v3"}, "factorised": {"inception_v3"},
                "separable": {"mobilenet_v1", "mobilenet_v2", "xception"},
                "receptive_field": {"resnet18", "resnet50", "densenet121"}}
    for section, ids in expected.items():
        assert ids <= {link["id"] for link in body["links"][section]}
    for links in body["links"].values():
        for link in links:
            assert link["name"] == get_entry(link["id"]).name
            assert f'href="/models/{link["id"]}"' in page


def test_presets_come_from_the_architecture(client):
    presets = client.get("/api/lab").json()["inception_presets"]
    assert presets[0]["params"] == dict(height=28, width=28, channels=192, c1=64, c3r=96, c3=128, c5r=16, c5=32,
                                        pool_proj=32, pool=True)


def test_layers_json_has_receptive_fields(client):
    layers = {row["path"]: row for row in client.get("/api/models/vgg16/layers").json()["layers"]}
    assert (layers["features.2"]["receptive_field"], layers["features.2"]["jump"]) == (5, 1)
    assert (layers["features.4"]["receptive_field"], layers["features.4"]["jump"]) == (6, 2)


def test_receptive_growth_follows_the_layers_json(client):
    body = client.get("/api/lab/receptive-growth", params={"model": "vgg16"}).json()
    points = {p["path"]: (p["receptive_field"], p["jump"]) for p in body["points"]}
    assert points["features.0"] == (3, 1) and points["features.2"] == (5, 1) and points["features.4"] == (6, 2)
    assert points["features.30"] == (212, 32) and points["classifier.0"] == (224, 224)  # FC6 mixes the whole map: the whole input
    assert "features.1" not in points  # a ReLU widens nothing
    layers = {row["path"]: row for row in client.get("/api/models/vgg16/layers").json()["layers"]}
    for path, (rf, jump) in points.items():
        assert (layers[path]["receptive_field"], layers[path]["jump"]) == (rf, jump)
    assert body["input_size"] == 224
    assert body["figure"]["data"][0]["y"] == [p["receptive_field"] for p in body["points"]]
    assert error_of(client.get("/api/lab/receptive-growth", params={"model": "nope"}), 404, "unknown_model")
