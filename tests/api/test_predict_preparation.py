"""A model's first load (on ONNX Runtime: export + verification, about a
minute for EfficientNet-Lite1/Lite2) shows as progress: /api/predict/worker
and /api/predict/models say which model is being prepared and at which stage,
the worker keeps answering for the models already loaded meanwhile, and the
answer says how long it waited (``prepare_ms``)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

import models.predictor
from app.main import create_app
from tests.conftest import make_settings


def _wait_for(what, check, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _post(client, photo, model):
    return client.post("/api/predict", files={"file": ("photo", photo.read_bytes())}, data={"model": model})


def _hold_lite1s_load(monkeypatch) -> threading.Event:
    """Lite1's real weight loading waits for the returned event."""
    gate = threading.Event()
    real_load = models.predictor.load_pretrained

    def held(entry, device):
        if entry.id == "efficientnet_lite1":
            assert gate.wait(120), "the test never released the load"
        return real_load(entry, device)

    monkeypatch.setattr(models.predictor, "load_pretrained", held)
    return gate


def test_a_first_load_shows_its_stage_while_loaded_models_keep_answering(tmp_path, photos, monkeypatch):
    """Eager runtime (no export) keeps it quick; the real weight loading is
    held at its start until the test has seen the state."""
    gate = _hold_lite1s_load(monkeypatch)
    with TestClient(create_app(make_settings(cache_dir=tmp_path, runtime="torch"))) as client, \
            ThreadPoolExecutor(1) as pool:
        _check(client, pool, photos, gate)


def _check(client, pool, photos, gate):
    try:
        before = {m["id"]: m for m in client.get("/api/predict/models?available=true").json()["models"]}
        assert before["efficientnet_lite1"]["state"] == "not_loaded"
        first = pool.submit(_post, client, photos["chelsea"], "efficientnet_lite1")
        # (queued first behind the start-up preload of Lite0, then loading)
        preparing = _wait_for("Lite1 shown loading its weights", lambda: next(
            (p for p in client.get("/api/predict/worker").json()["preparing"]
             if p["model"] == "efficientnet_lite1" and p["stage"] == "loading its weights"), None))
        assert preparing["seconds"] >= 0
        listed = {m["id"]: m for m in client.get("/api/predict/models?available=true").json()["models"]}
        assert listed["efficientnet_lite1"]["state"] == "preparing"
        assert listed["efficientnet_lite1"]["preparing_stage"] == "loading its weights"
        # Lite0, loaded at start-up, answers while Lite1 is held.
        meanwhile = _post(client, photos["coffee"], "efficientnet_lite0")
        assert meanwhile.status_code == 200 and meanwhile.json()["predictions"][0]["label"] == "espresso"
        assert meanwhile.json()["prepare_ms"] == 0 and not first.done()
        time.sleep(0.3)
        gate.set()
        answer = first.result(timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json()["prepare_ms"] >= 300
        assert answer.json()["predictions"][0]["label"] in {"tabby", "tiger cat", "Egyptian cat"}
        again = _post(client, photos["chelsea"], "efficientnet_lite1").json()
        assert again["prepare_ms"] == 0
        after = {m["id"]: m for m in client.get("/api/predict/models?available=true").json()["models"]}
        assert after["efficientnet_lite1"]["state"] == "ready" and after["efficientnet_lite1"]["runtime"] == "torch"
        assert client.get("/api/predict/worker").json()["preparing"] == []
    finally:
        gate.set()


def test_a_model_not_exported_yet_says_its_first_prediction_takes_a_minute(client):
    """On ONNX Runtime, before any export of Lite2 is on disk, its entry says what the first use costs."""
    lite2 = next(m for m in client.get("/api/predict/models?available=true").json()["models"]
                 if m["id"] == "efficientnet_lite2")
    if lite2["state"] != "not_loaded" or lite2["export_cached"]:
        pytest.skip("Lite2 was exported or loaded by an earlier test in this session")
    assert lite2["export_cached"] is False
    assert "about a minute" in lite2["runtime_reason"]


def test_requests_waiting_for_a_load_are_bounded_like_the_queue(tmp_path, photos, monkeypatch):
    """With max_queue 2, two requests may wait for Lite1's load; a third is told 503 busy at once (with
    Retry-After), Lite0 keeps answering, and the two waiting get their answers once the load is done."""
    gate = _hold_lite1s_load(monkeypatch)
    with TestClient(create_app(make_settings(cache_dir=tmp_path, runtime="torch", max_queue=2))) as client, \
            ThreadPoolExecutor(2) as pool:
        try:
            waiting = [pool.submit(_post, client, photos["chelsea"], "efficientnet_lite1") for _ in range(2)]
            _wait_for("Lite1 loading (Lite0's start-up load done)", lambda: next(
                (p for p in client.get("/api/predict/worker").json()["preparing"]
                 if p["model"] == "efficientnet_lite1" and p["stage"] == "loading its weights"), None))
            _wait_for("two requests waiting for Lite1's load",
                      lambda: client.get("/api/predict/worker").json()["waiting_for_load"] == 2 or None)
            third = _post(client, photos["chelsea"], "efficientnet_lite1")
            assert third.status_code == 503, third.text
            assert third.json()["error"]["code"] == "busy" and int(third.headers["Retry-After"]) >= 1
            assert "being loaded" in third.json()["error"]["message"]
            assert _post(client, photos["coffee"], "efficientnet_lite0").status_code == 200
        finally:
            gate.set()
        assert [w.result(timeout=120).status_code for w in waiting] == [200, 200]
        assert client.get("/api/predict/worker").json()["waiting_for_load"] == 0
        assert _post(client, photos["chelsea"], "efficientnet_lite1").status_code == 200


def test_the_app_stopping_ends_its_preparation_thread(tmp_path):
    """The start-up preload runs in the preparation thread; shutdown ends it (a load left running past its app,
    an ONNX export, shared torch's tracing state with the next test's work: a KeyError in torch.fx)."""
    before = set(threading.enumerate())
    with TestClient(create_app(make_settings(cache_dir=tmp_path, runtime="torch"))) as client:
        _wait_for("the preload of the default model under way or done", lambda: True if (
            client.get("/api/predict/worker").json()["preparing"]
            or any(t.name == "convzoo-prepare" for t in set(threading.enumerate()) - before)) else None)
    left = [t for t in set(threading.enumerate()) - before if t.name == "convzoo-prepare" and t.is_alive()]
    assert left == []
