"""Inside LeNet-5 (trained in this test session on scikit-learn's digits):
its kernels, the feature maps of a real handwritten digit, what its
prediction looked at (Grad-CAM, occlusion) and why the ReLU rules are not offered."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from models.digits import bitmap_image, load_digit_data


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.fixture(scope="module")
def digit_png() -> bytes:
    """A held-out-style real digit from the dataset, drawn dark on light at 128 x 128 as on paper."""
    images, labels = load_digit_data()
    seven = images[int(np.flatnonzero(labels == 7)[-1])]
    picture = Image.eval(bitmap_image(seven).resize((128, 128), Image.Resampling.BICUBIC), lambda v: 255 - v)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lenet_layers(client) -> dict[str, dict]:
    return {row["path"]: row for row in client.get("/api/models/lenet5/layers").json()["layers"]}


def test_lenet5_kernels(client):
    c1 = client.get("/api/models/lenet5/filters").json()
    assert c1["layer"] == "features.0" and c1["shape"] == [6, 1, 5, 5] and c1["rgb"] is False
    assert c1["grid"]["count"] == 6 and c1["statistics"]["count"] == 150
    c3 = client.get("/api/models/lenet5/filters", params={"layer": "features.3"}).json()
    assert c3["shape"] == [16, 6, 5, 5] and c3["grid"]["count"] == 16 * 6
    assert (c3["grid"]["rows"], c3["grid"]["columns"]) == (16, 6)


@pytest.mark.parametrize("layer, shape, rf", [("features.0", [6, 28, 28], 5), ("features.2", [6, 14, 14], 6),
                                              ("features.3", [16, 10, 10], 14), ("features.5", [16, 5, 5], 16)])
def test_lenet5_feature_maps_of_a_real_digit(client, digit_png, lenet_layers, layer, shape, rf):
    response = client.post("/api/models/lenet5/feature-maps", files={"file": ("seven.png", digit_png)},
                           data={"layer": layer})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["shape"] == shape == lenet_layers[layer]["output_shape"][1:]
    assert body["grid"]["count"] == shape[0]
    assert body["receptive_field"] == rf == lenet_layers[layer]["receptive_field"]
    assert body["input_size"] == [1, 32, 32]


def test_a_blank_drawing_is_refused(client):
    blank = io.BytesIO()
    Image.new("L", (224, 224), 255).save(blank, format="PNG")
    assert_error(client.post("/api/models/lenet5/feature-maps", files={"file": ("b.png", blank.getvalue())},
                             data={"layer": "features.0"}), 400, "invalid_image")
    assert_error(client.post("/api/explain", files={"file": ("b.png", blank.getvalue())}, data={"model": "lenet5"}),
                 400, "invalid_image")


def _explain(client, png: bytes, **fields) -> dict:
    response = client.post("/api/explain", files={"file": ("seven.png", png)}, data={"model": "lenet5", **fields})
    assert response.status_code == 200, response.text
    return response.json()


def _picture(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("L"))


def test_lenet5_explains_a_digit_with_gradcam_at_its_last_map(client, digit_png):
    body = _explain(client, digit_png)
    assert body["method"] == "gradcam" and body["layer"] == "features.5"  # the last 5x5 map
    assert body["target"]["label"] == "7" and body["target"]["probability"] > 0.9
    heat = body["heatmap"]
    assert (heat["width"], heat["height"]) == (32, 32) and len(heat["values"]) == 32 * 32
    assert 0 <= min(heat["values"]) and max(heat["values"]) == 1
    at_c3 = _explain(client, digit_png, layer="features.3", target="1")
    assert at_c3["layer"] == "features.3" and at_c3["target"]["index"] == 1


def test_lenet5_occlusion_erases_ink_so_its_heat_lies_on_the_strokes(client, digit_png):
    """Occlusion's square is blank paper: over paper it changes nothing, so every hot pixel is near ink
    of the input the net saw (answered as crop_png, ink dark on white)."""
    body = _explain(client, digit_png, method="occlusion", crop_png="true")
    heat = np.array(body["heatmap"]["values"]).reshape(32, 32)
    picture = _picture(body["crop_png"])
    ink = picture < 255  # any ink at all, the strokes' faint upsampled edges too
    assert ink.shape == (32, 32) and 0.05 < (picture < 128).mean() < 0.5
    near_ink = np.zeros_like(ink)
    for dy in range(-4, 5):  # a window of the 13 x 13 grid is 5 px wide: its heat reaches 4 px from the ink
        for dx in range(-4, 5):
            near_ink |= np.roll(ink, (dy, dx), axis=(0, 1))
    assert heat.max() == 1 and heat[~near_ink].max() < 1e-3  # float noise of batched passes at most
    assert heat[picture < 128].mean() > 0.1


def test_lenet5_heatmap_lies_over_the_square_its_input_spans(client, digit_png):
    """The input is redrawn from the ink: the crop is the square around it; the same digit moved on a
    larger sheet moves the crop by as much, and its side is 32/24 of the ink's longer side."""
    alone = _explain(client, digit_png, method="occlusion")["crop"]
    sheet = Image.new("L", (400, 300), 255)
    sheet.paste(Image.open(io.BytesIO(digit_png)), (200, 100))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    moved = _explain(client, buffer.getvalue(), method="occlusion")
    crop = moved["crop"]
    assert moved["image"] == [400, 300] and moved["target"]["label"] == "7"
    near = 0.03 * alone["width"]  # Otsu's threshold on the larger sheet may move the ink's edge a pixel or two
    assert crop["x"] == pytest.approx(alone["x"] + 200, abs=near)
    assert crop["y"] == pytest.approx(alone["y"] + 100, abs=near)
    assert crop["width"] == crop["height"] == pytest.approx(alone["width"], abs=near)
    ink_rows = np.flatnonzero((np.asarray(Image.open(io.BytesIO(digit_png))) < 128).any(axis=1))
    assert crop["height"] == pytest.approx((ink_rows[-1] + 1 - ink_rows[0]) * 32 / 24, rel=0.05)


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
def test_relu_rules_are_refused_for_tanh_units_with_why(client, digit_png, method):
    response = client.post("/api/explain", files={"file": ("seven.png", digit_png)},
                           data={"model": "lenet5", "method": method})
    assert_error(response, 422, "invalid_parameter")
    assert "ReLU" in response.json()["error"]["message"] and "Tanh" in response.json()["error"]["message"]
    page = client.get("/api/models/lenet5/inside").json()
    assert page["methods"] == ["gradcam", "occlusion"]
    assert "Tanh" in page["unavailable_methods"][method]
    assert client.get("/api/models/efficientnet_lite0/inside").json()["unavailable_methods"] == {}
