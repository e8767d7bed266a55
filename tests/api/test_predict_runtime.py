"""Predictions on ONNX Runtime against eager PyTorch, through HTTP: every
model that can predict offline gives the same top-5 on the real photos on
both runtimes; /api/predict/models says which runtime each model uses and
why; an export that fails verification or the exporter leaves the model on
PyTorch, with the reason."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from models.registry import list_models
from models.weights import weights_status
from tests.conftest import make_settings

OFFLINE = [entry.id for entry in list_models() if weights_status(entry).available]
PHOTOS = ("chelsea", "coffee", "grace_hopper", "camera")  # camera: greyscale


@pytest.fixture(scope="module")
def eager_client():
    with TestClient(create_app(make_settings(runtime="torch"))) as client:
        yield client


def _top5(client, photo, model) -> dict:
    response = client.post("/api/predict", files={"file": ("photo", photo.read_bytes())}, data={"model": model})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("model", OFFLINE)
def test_onnx_runtime_and_eager_give_the_same_top5_on_real_photos(client, eager_client, photos, model):
    for name in PHOTOS:
        ort, eager = _top5(client, photos[name], model), _top5(eager_client, photos[name], model)
        assert (ort["runtime"], eager["runtime"]) == ("onnxruntime", "torch")
        assert [p["index"] for p in ort["predictions"]] == [p["index"] for p in eager["predictions"]], name
        assert [p["probability"] for p in ort["predictions"]] == pytest.approx(
            [p["probability"] for p in eager["predictions"]], abs=1e-4)


def test_models_list_says_which_runtime_and_why(client, eager_client, photos):
    _top5(client, photos["chelsea"], "efficientnet_lite0")
    body = client.get("/api/predict/models").json()
    assert body["runtime_setting"] == "auto"
    models = {m["id"]: m for m in body["models"]}
    lite0 = models["efficientnet_lite0"]
    assert lite0["runtime"] == "onnxruntime"
    assert "logits within 0.0001 and the same top-5 as eager PyTorch" in lite0["runtime_reason"]
    for model in models.values():
        if not model["available"]:
            assert model["runtime"] is None and model["runtime_reason"]
    eager = {m["id"]: m for m in eager_client.get("/api/predict/models").json()["models"]}
    assert eager["efficientnet_lite0"]["runtime"] == "torch"
    assert "as the runtime setting asks" in eager["efficientnet_lite0"]["runtime_reason"]


def _fallback_app(tmp_path, **overrides):
    return TestClient(create_app(make_settings(cache_dir=tmp_path, **overrides)))


def test_an_export_that_fails_verification_stays_on_pytorch_with_the_reason(eager_client, photos, settings):
    """No export agrees with eager PyTorch to 0: verification refuses it. (The
    smallest offline model, LeNet-5, keeps the extra export cheap.)"""
    with TestClient(create_app(make_settings(onnx_tolerance=0, default_model="lenet5"))) as client:
        body = _top5(client, photos["camera"], "lenet5")
        lenet = next(m for m in client.get("/api/predict/models").json()["models"] if m["id"] == "lenet5")
    assert body["runtime"] == "torch"
    assert body["predictions"] == _top5(eager_client, photos["camera"], "lenet5")["predictions"]
    assert lenet["runtime"] == "torch"
    assert "logits differ by up to" in lenet["runtime_reason"] and "over the tolerance 0" in lenet["runtime_reason"]
    # The verdict is kept with its reason, and no .onnx file with it.
    [record] = [path for path in (settings.cache_dir / "onnx").glob("lenet5-*.json")
                if '"ok": false' in path.read_text()]
    assert not record.with_suffix(".onnx").exists()


def test_a_failing_exporter_leaves_the_model_on_pytorch(tmp_path, photos, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported operator aten::made_up (exporting it was made to fail)")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with _fallback_app(tmp_path) as client:
        body = _top5(client, photos["chelsea"], "efficientnet_lite0")
        lite0 = next(m for m in client.get("/api/predict/models").json()["models"] if m["id"] == "efficientnet_lite0")
    assert body["runtime"] == "torch"
    assert lite0["runtime"] == "torch"
    assert "torch.onnx.export failed: RuntimeError: Unsupported operator aten::made_up" in lite0["runtime_reason"]
    assert not list((tmp_path / "onnx").glob("*.json"))  # an exception is retried at the next load, not kept
