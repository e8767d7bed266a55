"""Inside a network through HTTP, on EfficientNet-Lite0's real weights and
real photos: filters, feature maps, and explanations whose maxima land on
the object the prediction is about; every bad input gets its API.md code."""

from __future__ import annotations

import base64
import io
import threading
import time

import httpx
import pytest
from PIL import Image

from app.main import create_app
from models.preprocess import preprocessing_for
from models.registry import get_entry
from models.weights import load_pretrained
from tests.conftest import make_settings, serving

LITE0 = "efficientnet_lite0"
CATS = {"tabby", "tiger cat", "Egyptian cat"}

# Measured once on the pictures (original pixels, x0, y0, x1, y1): in chelsea.png (451 x 300) the cat's face,
# eyes to chin, with the background on the right (x > 370) and the top corners outside; in coffee.png
# (600 x 400) the cup with the coffee in it, without the saucer's rim, the spoon's tip or the table.
BOXES = {"chelsea": (100, 40, 360, 290), "coffee": (170, 15, 420, 310)}


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data), formats=["PNG"]).size


def explain(client, photo, **fields):
    data = photo if isinstance(photo, bytes) else photo.read_bytes()
    return client.post("/api/explain", files={"file": ("photo", data)}, data=fields)


@pytest.fixture(scope="module")
def lite0_weights():
    return load_pretrained(get_entry(LITE0), "cpu").state_dict()


@pytest.fixture(scope="module")
def lite0_layers(client) -> dict[str, dict]:
    rows = client.get(f"/api/models/{LITE0}/layers").json()["layers"]
    first: dict[str, dict] = {}
    for row in rows:
        first.setdefault(row["path"], row)
    return first


@pytest.fixture(scope="module")
def explained(client, photos) -> dict[tuple[str, str], dict]:
    """Grad-CAM and occlusion of chelsea and coffee, once for the module."""
    answers = {}
    for name in BOXES:
        for method in ("gradcam", "occlusion"):
            response = explain(client, photos[name], method=method)
            assert response.status_code == 200, response.text
            answers[name, method] = response.json()
    return answers


# -- filters -----------------------------------------------------------------

def test_lite0_stem_filters_are_32_rgb_3x3_kernels_with_their_statistics(client, lite0_weights):
    body = client.get(f"/api/models/{LITE0}/filters").json()
    assert body["layer"] == "conv_stem"
    assert body["shape"] == [32, 3, 3, 3]
    assert body["rgb"] is True and body["groups"] == 1 and body["stride"] == [2, 2]
    assert body["grid"]["count"] == 32 and body["shown_out"] == 32
    weight = lite0_weights["conv_stem.weight"]
    stats = body["statistics"]
    assert stats["count"] == 32 * 3 * 3 * 3
    assert stats["mean"] == pytest.approx(weight.mean().item(), abs=1e-6)
    assert stats["max"] == pytest.approx(weight.max().item())
    assert stats["filter_norms"] == pytest.approx(weight.flatten(1).norm(dim=1).tolist(), abs=1e-5)
    png = client.get(body["png_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png_size(png.content) == (body["grid"]["width"], body["grid"]["height"])
    assert len(body["conv_layers"]) == 49  # 1 stem + 16 blocks' convolutions (2 or 3 each) + the head


def test_any_convolution_draws_its_kernels_as_a_grid(client, lite0_weights):
    depthwise = client.get(f"/api/models/{LITE0}/filters", params={"layer": "blocks.1.0.conv_dw"}).json()
    assert depthwise["shape"] == [96, 1, 3, 3] and depthwise["groups"] == 96 and depthwise["rgb"] is False
    assert depthwise["grid"]["count"] == 96
    head = client.get(f"/api/models/{LITE0}/filters", params={"layer": "conv_head"}).json()
    assert head["shape"] == [1280, 320, 1, 1]
    assert (head["shown_out"], head["shown_in"]) == (64, 64)  # drawn: the first 64 x 64; counted: all
    assert head["statistics"]["count"] == 1280 * 320
    assert head["colour_scale"] == pytest.approx(lite0_weights["conv_head.weight"][:64, :64].abs().max().item())
    png = client.get(f"/api/models/{LITE0}/filters.png", params={"layer": "conv_head"})
    assert png_size(png.content) == (head["grid"]["width"], head["grid"]["height"])


@pytest.mark.parametrize("layer, side, kernel, stride, declared, applied", [
    ("conv_stem", 224, 3, 2, "same", [0, 1, 0, 1]),  # TF 'SAME': (112 - 1) * 2 + 3 - 224 = 1, at the bottom/right
    ("blocks.2.0.conv_dw", 56, 5, 2, "same", [1, 2, 1, 2]),  # (28 - 1) * 2 + 5 - 56 = 3: 1 before, 2 after
    ("blocks.0.0.conv_dw", 112, 3, 1, [1, 1], [1, 1, 1, 1]),  # stride 1, odd kernel: static and symmetric
    ("conv_head", 7, 1, 1, [0, 0], [0, 0, 0, 0]),
])
def test_filters_report_the_padding_the_layer_applies(client, lite0_layers, layer, side, kernel, stride, declared,
                                                      applied):
    """EfficientNet-Lite0's TF port pads its strided convolutions as TF's 'SAME' does (timm's Conv2dSame, whose
    module says padding 0): pad = max((ceil(i / s) - 1) * s + (k - 1) + 1 - i, 0), the odd pixel after."""
    body = client.get(f"/api/models/{LITE0}/filters", params={"layer": layer}).json()
    assert lite0_layers[layer]["input_shape"][2:] == [side, side]
    assert body["shape"][2:] == [kernel, kernel] and body["stride"] == [stride, stride]
    assert body["padding"] == declared and body["padding_applied"] == applied
    top, bottom, left, right = applied  # the output size follows from the padding applied
    assert lite0_layers[layer]["output_shape"][2] == (side + top + bottom - kernel) // stride + 1


@pytest.mark.parametrize("layer", ["bn1", "blocks.9", "nonsense", "conv_stem.weight"])
def test_filters_of_a_layer_that_is_no_convolution_are_refused(client, layer):
    assert_error(client.get(f"/api/models/{LITE0}/filters", params={"layer": layer}), 422, "invalid_parameter")


def test_filters_need_a_known_model_with_weights(client):
    assert_error(client.get("/api/models/no_such_net/filters"), 404, "unknown_model")
    assert_error(client.get("/api/models/zfnet/filters"), 409, "weights_unavailable")
    assert_error(client.get("/api/models/zfnet/filters.png"), 409, "weights_unavailable")


# -- feature maps ----------------------------------------------------------------

@pytest.mark.parametrize("layer", ["conv_stem", "bn1", "blocks.1", "blocks.2.1.conv_dw", "blocks.6.0", "bn2.act"])
def test_feature_maps_have_the_layers_channels_shape_and_receptive_field(client, photos, lite0_layers, layer):
    response = client.post(f"/api/models/{LITE0}/feature-maps", files={"file": ("c", photos["coffee"].read_bytes())},
                           data={"layer": layer})
    assert response.status_code == 200, response.text
    body = response.json()
    row = lite0_layers[layer]
    assert body["shape"] == row["output_shape"][1:]
    assert body["grid"]["count"] == row["output_shape"][1] == len(body["channels"])
    assert body["receptive_field"] == row["receptive_field"] and body["jump"] == row["jump"]
    assert body["input_size"] == [3, 224, 224]
    png = base64.b64decode(body["png"].removeprefix("data:image/png;base64,"))
    assert png_size(png) == (body["grid"]["width"], body["grid"]["height"])
    assert all(c["min"] <= c["mean"] <= c["max"] for c in body["channels"])


def test_feature_maps_png_and_known_numbers(client, photos):
    response = client.post(f"/api/models/{LITE0}/feature-maps.png",
                           files={"file": ("c", photos["chelsea"].read_bytes())}, data={"layer": "conv_stem"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    # conv_stem: 32 maps of 112 x 112 (3x3 stride 2, TF 'SAME'), 6 columns x 6 rows with 2-pixel gaps
    assert png_size(response.content) == (6 * 112 + 5 * 2, 6 * 112 + 5 * 2)


@pytest.mark.parametrize("layer, status, code", [
    ("classifier", 422, "invalid_parameter"),  # a vector, not maps
    ("global_pool", 422, "invalid_parameter"),
    ("no.such.layer", 422, "invalid_parameter"),
    ("", 422, "invalid_parameter"),
])
def test_feature_maps_of_bad_layers_are_refused(client, photos, layer, status, code):
    response = client.post(f"/api/models/{LITE0}/feature-maps", files={"file": ("c", photos["coffee"].read_bytes())},
                           data={"layer": layer})
    assert_error(response, status, code)


def test_feature_maps_refuse_bad_images_and_models_without_weights(client, photos):
    url = f"/api/models/{LITE0}/feature-maps"
    assert_error(client.post(url, files={"file": ("x", b"not an image")}, data={"layer": "bn1"}), 415, "invalid_image")
    assert_error(client.post(url, files={"file": ("x", b"")}, data={"layer": "bn1"}), 400, "invalid_image")
    truncated = photos["coffee"].read_bytes()[:5000]
    assert_error(client.post(url, files={"file": ("x", truncated)}, data={"layer": "bn1"}), 400, "invalid_image")
    assert_error(client.post("/api/models/zfnet/feature-maps", files={"file": ("c", photos["coffee"].read_bytes())},
                             data={"layer": "features.0"}), 409, "weights_unavailable")
    assert client.get("/api/health").status_code == 200


# -- explanations ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BOXES))
@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_the_maximum_lies_on_the_object(explained, name, method):
    body = explained[name, method]
    labels = CATS if name == "chelsea" else {"espresso"}
    assert body["target"]["label"] in labels
    heat = body["heatmap"]
    values = heat["values"]
    assert len(values) == heat["width"] * heat["height"] == 224 * 224
    assert min(values) >= 0 and max(values) == 1
    row, column = divmod(values.index(max(values)), heat["width"])
    crop = body["crop"]
    x = crop["x"] + (column + 0.5) * crop["width"] / heat["width"]
    y = crop["y"] + (row + 0.5) * crop["height"] / heat["height"]
    x0, y0, x1, y1 = BOXES[name]
    assert x0 <= x <= x1 and y0 <= y <= y1, (x, y)


def test_the_crop_is_where_the_centre_crop_lies_in_the_original(explained):
    # chelsea is 451 x 300. Lite0 resizes the shorter side to 256 and crops 224 from the centre, done as one
    # resampling of the crop's source box: a square of side 300 * 224 / 256 = 262.5 in the middle of the photo.
    side = 300 * 224 / 256
    assert explained["chelsea", "gradcam"]["crop"] == pytest.approx(
        {"x": (451 - side) / 2, "y": (300 - side) / 2, "width": side, "height": side})
    assert explained["coffee", "gradcam"]["crop"] == {"x": 125.0, "y": 25.0, "width": 350.0, "height": 350.0}
    assert explained["chelsea", "gradcam"]["image"] == [451, 300]
    assert explained["chelsea", "gradcam"]["layer"] == "bn2.act"  # the last 7 x 7 map
    assert explained["chelsea", "occlusion"]["layer"] is None


def test_the_crop_is_in_the_pixels_of_the_upright_image(client, photos, explained):
    upright = Image.open(photos["chelsea"]).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_270)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    body = explain(client, buffer.getvalue(), method="gradcam").json()
    assert body["image"] == [451, 300]
    assert body["crop"] == explained["chelsea", "gradcam"]["crop"]


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
def test_gradient_images_are_heatmaps_in_0_1(client, photos, method):
    body = explain(client, photos["chelsea"], method=method).json()
    values = body["heatmap"]["values"]
    assert body["method"] == method and body["target"]["label"] in CATS
    assert len(values) == 224 * 224 and min(values) >= 0 and max(values) == 1
    assert sum(v > 0 for v in values) > len(values) // 2  # a gradient image, not a few spots


def test_explain_a_chosen_class_at_a_chosen_layer(client, photos):
    body = explain(client, photos["chelsea"], method="gradcam", target="281", layer="blocks.5").json()
    assert body["target"]["index"] == 281 and body["target"]["label"] == "tabby"
    assert 0 < body["target"]["probability"] < 1
    assert body["layer"] == "blocks.5"
    assert body["heatmap"]["width"] == 224


@pytest.mark.parametrize("fields, status, code", [
    ({"method": "lime"}, 422, "invalid_parameter"),
    ({"target": "1000"}, 422, "invalid_parameter"),
    ({"target": "-1"}, 422, "invalid_parameter"),
    ({"target": "cat"}, 422, "invalid_parameter"),
    ({"layer": "classifier"}, 422, "invalid_parameter"),
    ({"layer": "no.such"}, 422, "invalid_parameter"),
    ({"model": "no_such_net"}, 404, "unknown_model"),
    ({"model": "zfnet"}, 409, "weights_unavailable"),
    ({"colour": "red"}, 422, "invalid_parameter"),
])
def test_explain_errors(client, photos, fields, status, code):
    assert_error(explain(client, photos["coffee"], **fields), status, code)


def test_explain_refuses_what_is_no_image(client, photos):
    assert_error(explain(client, b"GIF89a broken"), 415, "invalid_image")
    assert_error(explain(client, photos["chelsea"].read_bytes()[:3000]), 400, "invalid_image")
    assert_error(client.post("/api/explain", data={"method": "gradcam"}), 422, "invalid_parameter")


def test_the_inside_page_data_lists_layers_from_the_analysis(client, lite0_layers):
    body = client.get(f"/api/models/{LITE0}/inside").json()
    assert body["available"] is True and body["default_cam_layer"] == "bn2.act"
    assert body["conv_layers"][0] == "conv_stem" and len(body["conv_layers"]) == 49
    maps = {choice["path"]: choice for choice in body["map_layers"]}
    assert "classifier" not in maps and maps["blocks.1"]["output_shape"] == lite0_layers["blocks.1"]["output_shape"][1:]
    assert body["methods"] == ["gradcam", "occlusion", "guided_backprop", "deconvnet"]
    assert client.get("/api/models/zfnet/inside").json()["available"] is False
    assert_error(client.get("/api/models/nope/inside"), 404, "unknown_model")


def test_one_explanation_at_a_time_and_the_rest_are_told_to_wait(photos):
    """With no room to wait, a request that arrives while an occlusion runs
    gets 503 busy with Retry-After at once, and the server keeps serving."""
    data = photos["coffee"].read_bytes()
    with serving(create_app(make_settings(inside_max_waiting=0))) as url:
        first: dict = {}

        def occlude():
            first["response"] = httpx.post(f"{url}/api/explain", files={"file": ("c", data)},
                                           data={"method": "occlusion"}, timeout=120)

        thread = threading.Thread(target=occlude)
        thread.start()
        time.sleep(0.5)  # the occlusion is admitted first (its upload takes milliseconds)
        second = None
        while thread.is_alive():  # ask until a request meets the running occlusion (it takes seconds)
            answer = httpx.post(f"{url}/api/explain", files={"file": ("c", data)}, data={"method": "gradcam"},
                                timeout=30)
            if answer.status_code != 200:
                second = answer
                break
            time.sleep(0.02)
        assert second is not None, "no request arrived while the occlusion ran"
        assert_error(second, 503, "busy")
        assert int(second.headers["Retry-After"]) >= 1
        assert httpx.get(f"{url}/api/health").status_code == 200
        thread.join(timeout=120)
        assert first["response"].status_code == 200
        after = httpx.post(f"{url}/api/explain", files={"file": ("c", data)}, data={"method": "gradcam"}, timeout=30)
        assert after.status_code == 200


def test_explain_says_which_layer_is_wrong_and_for_which_method(client, photos):
    unknown = explain(client, photos["coffee"], layer="nosuch")
    assert_error(unknown, 422, "invalid_parameter")
    assert "'nosuch' is not a layer of this model" in unknown.json()["error"]["message"]
    flat = explain(client, photos["coffee"], layer="classifier").json()["error"]["message"]
    assert "more than one cell" in flat and "not a layer" not in flat
    for method in ("occlusion", "guided_backprop", "deconvnet"):
        refused = explain(client, photos["coffee"], method=method, layer="bn2.act")
        assert_error(refused, 422, "invalid_parameter")
        assert "Grad-CAM only" in refused.json()["error"]["message"]


def test_explain_answers_the_input_crop_as_a_png_when_asked(client, photos, explained):
    """For browsers that can't decode the upload (Chromium and TIFF): the crop the heatmap covers."""
    buffer = io.BytesIO()
    cat = Image.open(photos["chelsea"]).convert("RGB")
    cat.save(buffer, format="TIFF")
    body = explain(client, buffer.getvalue(), crop_png="true").json()
    assert body["crop"] == explained["chelsea", "gradcam"]["crop"] and explained["chelsea", "gradcam"]["crop_png"] is None
    header, encoded = body["crop_png"].split(",", 1)
    assert header == "data:image/png;base64"
    crop = Image.open(io.BytesIO(base64.b64decode(encoded)), formats=["PNG"])
    assert crop.size == (224, 224)  # Lite0's input; the pixels are those fed to it, before normalisation
    x, y, w, h = (body["crop"][k] for k in ("x", "y", "width", "height"))
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[preprocessing_for(get_entry(LITE0)).interpolation]
    assert crop.tobytes() == cat.resize((224, 224), resample, box=(x, y, x + w, y + h)).tobytes()
    assert_error(explain(client, photos["coffee"], crop_png="yes"), 422, "invalid_parameter")
