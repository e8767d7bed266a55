"""Fetching weights from the page, end to end: a loopback HTTP server serves
a state dict this test wrote (and a truncated one, and one whose SHA-256 is
not the one its name carries); the server downloads it with progress a
client can follow, the model then predicts with exactly those weights, and
no answer shows a server path. Without a network the answer comes at once."""

from __future__ import annotations

import html
import hashlib
import io
import time

import pytest
import torch
import torchvision
from PIL import Image

from models.preprocess import preprocessing_for


@pytest.fixture(scope="module")
def reference():
    """SqueezeNet 1.1 with seeded random weights, and its state dict as bytes."""
    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_1().eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return model, buffer.getvalue()


def _follow(client, response) -> tuple[dict, list[float]]:
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    fractions = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(location).json()
        if job["fraction"] is not None:
            fractions.append(job["fraction"])
        if job["status"] in ("done", "failed"):
            return job, fractions
        time.sleep(0.05)
    raise AssertionError("the download did not finish in 60 s")


def test_fetch_from_a_loopback_server_then_predict_with_those_weights(client, monkeypatch, tmp_path, reference,
                                                                      photos, weights_server, register_url_entry):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model, body = reference
    digest = hashlib.sha256(body).hexdigest()
    good, wrong = f"squeezenet1_1-{digest[:8]}.pth", "squeezenet1_1-00000000.pth"
    truncated = f"squeezenet1_1-{digest[8:16]}.pth"
    files = {good: (body, len(body)), wrong: (body, len(body)), truncated: (body[:len(body) // 2], len(body))}
    with weights_server(files) as base_url:
        entry = register_url_entry("squeezenet_loopback", f"{base_url}/{good}")
        register_url_entry("squeezenet_wrong_hash", f"{base_url}/{wrong}")
        register_url_entry("squeezenet_truncated", f"{base_url}/{truncated}")
        assert client.get("/api/models/squeezenet_loopback").json()["weights"] == "downloadable"

        job, fractions = _follow(client, client.post("/api/models/squeezenet_loopback/weights/fetch"))
        assert job["status"] == "done" and job["weights"] == "available" and job["error"] is None
        assert job["received_bytes"] == job["total_bytes"] == len(body)
        assert any(0 < f < 1 for f in fractions) and fractions == sorted(fractions)

        failed, _ = _follow(client, client.post("/api/models/squeezenet_wrong_hash/weights/fetch"))
        assert failed["status"] == "failed" and failed["weights"] == "downloadable"
        assert f"begins {digest[:8]}, its name says 00000000" in failed["error"]

        cut, _ = _follow(client, client.post("/api/models/squeezenet_truncated/weights/fetch"))
        assert cut["status"] == "failed" and cut["weights"] == "downloadable"
        assert f"stopped after {len(body) // 2:,} of {len(body):,} bytes" in cut["error"]

    checkpoints = tmp_path / "hub" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [good]  # nothing partial left behind
    assert client.post("/api/models/squeezenet_loopback/weights/fetch").status_code == 200  # here already

    response = client.post("/api/predict", data={"model": "squeezenet_loopback", "topk": "5"},
                           files={"file": ("chelsea.png", photos["chelsea"].read_bytes())})
    assert response.status_code == 200, response.text
    image = Image.open(photos["chelsea"]).convert("RGB")
    with torch.inference_mode():
        expected = model(preprocessing_for(entry)(image)[None]).topk(5).indices[0].tolist()
    assert [p["index"] for p in response.json()["predictions"]] == expected

    shown = [client.get("/api/models/squeezenet_loopback").text, client.get("/models/squeezenet_loopback").text,
             client.get("/api/predict/models").text, str(job), str(failed), str(cut)]
    assert not any(str(tmp_path) in text or "checkpoints" in text for text in shown)


def _offline(client, model_id: str):
    started = time.monotonic()
    response = client.post(f"/api/models/{model_id}/weights/fetch")
    return response, time.monotonic() - started


@pytest.mark.parametrize("model_id, host", [("squeezenet1_1", "download.pytorch.org"),
                                           ("mobilenet_v1", "huggingface.co")])
def test_without_a_network_the_answer_is_plain_and_immediate(client, monkeypatch, tmp_path, model_id, host):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    response, _ = _offline(client, model_id)
    if response.status_code != 409:  # a machine with a network: the download started
        pytest.skip(f"{host} is reachable from here")
    error = response.json()["error"]
    assert error["code"] == "weights_unavailable"
    assert f"no network route to {host}" in error["message"] and f"convzoo weights fetch {model_id}" in error["message"]
    assert str(tmp_path) not in error["message"] and "/root" not in error["message"]


def test_models_with_nothing_to_download(client):
    response = client.post("/api/models/nin/weights/fetch")
    assert response.status_code == 409 and response.json()["error"]["code"] == "weights_unavailable"
    assert client.post("/api/models/efficientnet_lite1/weights/fetch").json()["status"] == "done"
    assert client.post("/api/models/resnet9000/weights/fetch").status_code == 404
    assert client.get("/api/weights/jobs/nosuchjob").json()["error"]["code"] == "not_found"


def test_without_a_network_no_message_offers_a_fetch(client, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    response, _ = _offline(client, "inception_v4")  # timm's older URL file; its label starts "the ..."
    if response.status_code != 409:
        pytest.skip("the weights' host is reachable from here")
    message = response.json()["error"]["message"]
    assert message.startswith("This server can't reach the internet") and "To use the inception_v4" in message
    assert "gaierror" not in message and "Errno" not in message and ". the " not in message
    assert "convzoo weights fetch inception_v4" in message and "copy" in message
    assert _offline(client, "squeezenet1_1")[0].status_code == 409
    models = {m["id"]: m for m in client.get("/api/predict/models").json()["models"]}
    for model_id in ("squeezenet1_1", "inception_v4"):
        reason = models[model_id]["reason"]
        assert "can't reach the internet" in reason and "Fetch them from the model page" not in reason, reason
    page = html.unescape(client.get("/models/squeezenet1_1").text)
    assert "can't reach the internet" in page and "Fetch them from the model page" not in page
