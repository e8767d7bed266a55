"""LeNet-5 through the HTTP API: photos of real handwritten digits it never
trained on are read, its card shows its held-out accuracy, and a picture
without a digit gets invalid_image."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def _predict(client, data: bytes, model: str = "lenet5"):
    return client.post("/api/predict", files={"file": ("digit.jpg", data)}, data={"model": model})


def test_digit_photos_are_read_by_lenet5(client, held_out_digits, make_digit_photo):
    images, labels = held_out_digits
    right = 0
    for i in range(20):
        response = _predict(client, make_digit_photo(images[i], dark_on_light=i % 2 == 1, seed=100 + i))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["input_size"] == [1, 32, 32] and len(body["predictions"]) == 5
        assert {p["label"] for p in body["predictions"]} <= set("0123456789")
        right += body["predictions"][0]["label"] == str(labels[i])
    assert right >= 19


def test_lenet5_card_shows_its_held_out_accuracy(client, held_out_digits, make_digit_photo):
    assert _predict(client, make_digit_photo(held_out_digits[0][0], dark_on_light=True, seed=0)).status_code == 200
    card = client.get("/api/models/lenet5").json()
    assert card["weights"] == "available"
    trained = card["trained_here"]
    assert trained["held_out_images"] == 450 and trained["train_images"] == 1347
    assert trained["held_out_accuracy"] >= 97.0
    page = client.get("/models/lenet5").text
    assert f'{trained["held_out_accuracy"]:.2f}%</strong> top-1 on 450 held-out digits' in page
    listed = {m["id"]: m for m in client.get("/api/predict/models").json()["models"]}
    assert listed["lenet5"]["available"]
    assert listed["lenet5"]["preprocessing"]["kind"] == "digit"
    assert listed["lenet5"]["preprocessing"]["input_size"] == [1, 32, 32]
    assert listed["efficientnet_lite2"]["preprocessing"]["input_size"] == [3, 260, 260]


def _blank_png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_picture_without_a_digit_is_refused_plainly(client):
    response = _predict(client, _blank_png((250, 250, 250)))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image"
    assert "no digit" in response.json()["error"]["message"]


def test_a_shadow_on_blank_paper_is_refused_plainly(client, make_digit_photo):
    photo = make_digit_photo(np.zeros((8, 8)), dark_on_light=True, seed=7, size=(640, 480), lighting="shadow")
    response = _predict(client, photo)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_image"
    assert "no digit" in response.json()["error"]["message"]


def test_lite1_and_lite2_read_the_cat(client, photos):
    for model, side in (("efficientnet_lite1", 240), ("efficientnet_lite2", 260)):
        response = client.post("/api/predict", files={"file": ("c.png", photos["chelsea"].read_bytes())},
                               data={"model": model})
        body = response.json()
        assert body["input_size"] == [3, side, side]
        assert body["predictions"][0]["label"] in {"Egyptian cat", "tabby", "tiger cat"}
