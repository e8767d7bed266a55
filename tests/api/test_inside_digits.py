"""Inside LeNet-5 (trained in this test session on scikit-learn's digits):
its kernels, the feature maps of a real handwritten digit, and the answers
where a digit model has nothing to show."""

from __future__ import annotations

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


def test_a_blank_drawing_and_an_explanation_of_a_digit_are_refused(client, digit_png):
    blank = io.BytesIO()
    Image.new("L", (224, 224), 255).save(blank, format="PNG")
    assert_error(client.post("/api/models/lenet5/feature-maps", files={"file": ("b.png", blank.getvalue())},
                             data={"layer": "features.0"}), 400, "invalid_image")
    response = client.post("/api/explain", files={"file": ("seven.png", digit_png)}, data={"model": "lenet5"})
    assert_error(response, 422, "invalid_parameter")
    assert "redraws its input" in response.json()["error"]["message"]
    assert client.get("/api/models/lenet5/inside").json()["methods"] == []
