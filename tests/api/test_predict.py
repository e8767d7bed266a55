"""POST /api/predict through HTTP: real photos give the right kind of class,
every bad input gets its API.md code and the server keeps serving, weights
in torch's cache make a model predict, and the worker batches and sheds load."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time

import httpx
import pytest
import torch
import torchvision
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from app.predict.pipeline import preload_entries
from models.registry import get_entry, list_models
from models.weights import torchvision_checkpoint_path

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


def predict(client, path_or_bytes, name="upload", **fields):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    return client.post("/api/predict", files={"file": (name, data)}, data=fields)


def labels(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["label"] for p in response.json()["predictions"]]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


# -- real photos --------------------------------------------------------------

def test_chelsea_is_a_cat(client, photos):
    response = predict(client, photos["chelsea"])
    body = response.json()
    assert CATS & set(labels(response))
    assert body["model"] == "efficientnet_lite0" and body["device"] == "cpu"
    assert [p["rank"] for p in body["predictions"]] == [1, 2, 3, 4, 5]
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 <= probabilities[-1] <= probabilities[0] <= 1
    assert set(body["timing_ms"]) == {"preprocess", "inference", "total"}
    assert body["input_size"] == [3, 224, 224]


def test_coffee_is_espresso(client, photos):
    top = labels(predict(client, photos["coffee"]))
    assert top[0] == "espresso" and "cup" in top


@pytest.mark.parametrize("photo, expected", [
    ("rocket", {"missile", "projectile", "space shuttle"}),
    ("motorcycle", {"moped", "motor scooter"}),
    ("grace_hopper", {"military uniform", "bow tie", "suit"}),
    ("camera", {"tripod", "reflex camera", "Polaroid camera"}),  # greyscale
])
def test_more_real_photos(client, photos, photo, expected):
    assert expected & set(labels(predict(client, photos[photo])))


def test_topk_and_health_report_the_same_device(client, photos):
    body = predict(client, photos["coffee"], topk="10").json()
    assert len(body["predictions"]) == 10
    assert len(predict(client, photos["coffee"], topk="1").json()["predictions"]) == 1
    assert client.get("/api/health").json()["device"] == body["device"]


# -- bad input --------------------------------------------------------------

def _bomb() -> bytes:
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _corrupt_png(photos) -> bytes:
    data = bytearray(photos["chelsea"].read_bytes())
    start = data.index(b"IDAT") + 100
    data[start:start + 40] = bytes(b ^ 0x55 for b in data[start:start + 40])
    return bytes(data)


@pytest.mark.parametrize("case, status", [
    ("zero_bytes", 400), ("text", 415), ("truncated_jpeg", 400), ("corrupt_png_chunk", 400),
    ("bomb_30000x30000", 413),
])
def test_bad_images_get_their_code_and_the_server_keeps_serving(client, photos, case, status):
    jpeg = photos["grace_hopper"].read_bytes()
    data = {"zero_bytes": b"", "text": b"just some text, not a picture\n" * 20,
            "truncated_jpeg": jpeg[: len(jpeg) // 2], "corrupt_png_chunk": _corrupt_png(photos),
            "bomb_30000x30000": _bomb()}[case]
    response = predict(client, data)
    assert_error(response, status, "too_large" if status == 413 else "invalid_image")
    assert CATS & set(labels(predict(client, photos["chelsea"])))


@pytest.mark.parametrize("topk", ["0", "11", "-1", "abc", "2.5", "1e3"])
def test_wrong_topk(client, photos, topk):
    assert_error(predict(client, photos["coffee"], topk=topk), 422, "invalid_parameter")


def test_unknown_model_and_models_without_weights(client, photos):
    assert_error(predict(client, photos["coffee"], model="resnet9000"), 404, "unknown_model")
    for model in ("vgg16", "nin", "inception_v4"):
        response = predict(client, photos["coffee"], model=model)
        assert_error(response, 409, "weights_unavailable")
    assert "convzoo weights fetch vgg16" in predict(client, photos["coffee"], model="vgg16").json()["error"]["message"]
    # timm's ResNet-50 named by its id too: "ResNet-50 cannot predict here" read as torchvision's
    assert "(timm-resnet50) cannot predict here" in predict(client, photos["coffee"], model="timm-resnet50").json()[
        "error"]["message"]
    assert labels(predict(client, photos["coffee"]))[0] == "espresso"


def _half_an_upload(url: str, data: bytes):
    """A socket that sent the headers and half the multipart body of an upload of ``data``, then nothing."""
    import socket
    from urllib.parse import urlparse

    boundary = "stalled"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'.encode()
            + data + f"\r\n--{boundary}--\r\n".encode())
    address = urlparse(url)
    sock = socket.create_connection((address.hostname, address.port))
    sock.sendall(f"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
    return sock


def test_a_stalled_upload_is_answered_408_and_a_client_that_leaves_is_no_server_error(photos, caplog):
    from tests.conftest import make_settings, serving

    app = create_app(make_settings(upload_idle_timeout_s=1.0))
    with serving(app) as url:
        stalled = _half_an_upload(url, photos["coffee"].read_bytes())
        stalled.settimeout(30)
        answer = b""
        while chunk := stalled.recv(65536):  # the server answers, then closes the connection
            answer += chunk
        stalled.close()
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 408"), head
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert "nothing arrived for 1 s" in json.loads(body)["error"]["message"]

        caplog.clear()
        _half_an_upload(url, photos["coffee"].read_bytes()).close()  # and goes away
        time.sleep(0.5)
        assert httpx.get(f"{url}/api/health").status_code == 200
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]


def test_malformed_requests(client, photos):
    assert_error(client.post("/api/predict", data={"model": "efficientnet_lite0"}), 422, "invalid_parameter")
    assert_error(client.post("/api/predict", content=b"raw bytes", headers={"content-type": "image/png"}),
                 422, "invalid_parameter")
    assert_error(client.post("/api/predict", files={"image": ("x.png", photos["coffee"].read_bytes())}),
                 422, "invalid_parameter")
    assert_error(predict(client, photos["coffee"], colour="blue"), 422, "invalid_parameter")
    coffee, chelsea = photos["coffee"].read_bytes(), photos["chelsea"].read_bytes()
    two_files = client.post("/api/predict", files=[("file", ("a.png", coffee)), ("file", ("b.png", chelsea))])
    assert_error(two_files, 422, "invalid_parameter")
    assert "more than one field named 'file'" in two_files.json()["error"]["message"]
    assert_error(client.post("/api/predict", files={"file": ("a.png", coffee)}, data={"topk": ["3", "4"]}),
                 422, "invalid_parameter")
    in_the_address = client.post("/api/predict?model=lenet5", files={"file": ("a.png", coffee)})
    assert_error(in_the_address, 422, "invalid_parameter")
    assert "in the multipart body, not in the address (got model)" in in_the_address.json()["error"]["message"]
    form = httpx.Request("POST", "http://x/api/predict", files={"file": ("a.png", coffee)})
    cut = client.post("/api/predict", content=form.read()[:-200], headers={"content-type": form.headers["content-type"]})
    assert_error(cut, 422, "invalid_parameter")
    assert "ended before its closing boundary" in cut.json()["error"]["message"]


@pytest.fixture(scope="module")
def small_limit_client(tmp_path_factory):
    settings = Settings(cache_dir=tmp_path_factory.mktemp("small"), warm_cache=False, device="cpu",
                        max_upload_bytes=100_000, max_image_pixels=200_000)
    with TestClient(create_app(settings)) as client:
        yield client


def test_over_the_upload_limit(small_limit_client, photos):
    chelsea = photos["chelsea"].read_bytes()  # 240 KB
    assert len(chelsea) > 100_000
    assert_error(predict(small_limit_client, chelsea), 413, "too_large")  # by Content-Length, unread


def test_over_the_upload_limit_while_streaming(small_limit_client, photos):
    """No Content-Length (chunked): the limit is enforced as the bytes arrive,
    and the server stops pulling the body (driven at the ASGI level to count
    what it read)."""
    app = small_limit_client.app
    boundary = "convzoo-test-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"",
             "root_path": "", "server": ("test", 80), "client": ("test", 1),
             "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                         (b"transfer-encoding", b"chunked")]}
    pulled, sent = [], []

    async def receive():
        pulled.append(1)
        chunk = head if len(pulled) == 1 else b"\0" * 65536
        return {"type": "http.request", "body": chunk, "more_body": len(pulled) < 1000}  # 64 MB on offer

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "too_large"
    assert len(pulled) <= 4  # 100 KB limit + form overhead: a few 64 KB chunks, not 1000


def test_over_the_pixel_limit(small_limit_client, photos):
    coffee = Image.open(photos["coffee"])  # 400x600 = 240,000 pixels
    out = io.BytesIO()
    coffee.save(out, "JPEG")
    assert_error(predict(small_limit_client, out.getvalue()), 413, "too_large")
    small = io.BytesIO()
    coffee.resize((200, 133)).save(small, "JPEG")
    assert labels(predict(small_limit_client, small.getvalue()))[0] == "espresso"


# -- weights from torch's cache ----------------------------------------------

def test_torch_cache_weights_make_a_model_predict(tmp_path, monkeypatch, photos):
    """A state dict the test writes into a temporary TORCH_HOME flips the
    catalog to "available", and predictions equal torchvision's own model
    with those weights and transforms. The LRU holds one model here."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    settings = Settings(cache_dir=tmp_path / "cache", warm_cache=False, device="cpu", loaded_models=1)
    entry = get_entry("squeezenet1_1")
    # Built before the app starts: its start-up ONNX export of the default model, in a thread, shares torch.fx's
    # global node metadata with any torch call made meanwhile in this thread (KeyError 'custom' in manual_seed).
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1().eval()
    with TestClient(create_app(settings)) as client:
        while client.get("/api/predict/worker").json()["preparing"]:  # the start-up load, before torch work here
            time.sleep(0.1)
        assert client.get("/api/models/squeezenet1_1").json()["weights"] == "downloadable"
        assert_error(predict(client, photos["chelsea"], model="squeezenet1_1"), 409, "weights_unavailable")

        path = torchvision_checkpoint_path(entry)
        path.parent.mkdir(parents=True)
        torch.save(reference.state_dict(), path)
        assert client.get("/api/models/squeezenet1_1").json()["weights"] == "available"
        listed = {m["id"]: m for m in client.get("/api/predict/models").json()["models"]}
        assert listed["squeezenet1_1"]["available"] is True

        body = predict(client, photos["chelsea"], model="squeezenet1_1").json()
        assert body["model"] == "squeezenet1_1"
        image = Image.open(photos["chelsea"]).convert("RGB")
        with torch.inference_mode():
            expected = reference(entry.tv_weights.transforms()(image)[None]).softmax(-1)[0].topk(5)
        assert [p["index"] for p in body["predictions"]] == expected.indices.tolist()
        assert [p["probability"] for p in body["predictions"]] == pytest.approx(expected.values.tolist(), abs=1e-5)
        assert client.get("/api/predict/worker").json()["loaded_models"] == ["squeezenet1_1"]

        path.unlink()
        assert client.get("/api/models/squeezenet1_1").json()["weights"] == "downloadable"
        assert_error(predict(client, photos["chelsea"], model="squeezenet1_1"), 409, "weights_unavailable")


# -- the worker: batching and back-pressure ------------------------------------

def _multipart(data: bytes) -> dict:
    return {"files": {"file": ("upload", data)}}


async def _wait_until(condition, what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def test_concurrent_requests_share_a_batch(tmp_path, photos):
    """Four requests queued before the worker starts run as one batch of four,
    with the same answers as one at a time."""
    app = create_app(Settings(cache_dir=tmp_path, warm_cache=False, device="cpu", max_batch_size=8))
    worker = app.state.inference
    names = ["chelsea", "coffee", "rocket", "grace_hopper"]

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            tasks = [asyncio.create_task(client.post("/api/predict", **_multipart(photos[n].read_bytes())))
                     for n in names]
            await _wait_until(lambda: worker.queued == 4, "four requests queued")
            worker.start(preload_entries(app.state.settings))
            batched = await asyncio.gather(*tasks)
            alone = [await client.post("/api/predict", **_multipart(photos[n].read_bytes())) for n in names]
            stats = (await client.get("/api/predict/worker")).json()
        worker.stop()
        return batched, alone, stats

    batched, alone, stats = asyncio.run(scenario())
    assert [r.json()["batch_size"] for r in batched] == [4, 4, 4, 4]
    assert [r.json()["batch_size"] for r in alone] == [1, 1, 1, 1]
    assert stats["batch_sizes"] == {"4": 1, "1": 4} and stats["images"] == 8
    for together, single in zip(batched, alone):
        a, b = together.json()["predictions"], single.json()["predictions"]
        assert [p["index"] for p in a] == [p["index"] for p in b]
        assert [p["probability"] for p in a] == pytest.approx([p["probability"] for p in b], abs=1e-4)


@pytest.mark.parametrize("runtime, peak", [("auto", 2), ("torch", 1)])
def test_onnx_runtime_runs_batches_side_by_side_and_eager_pytorch_one_at_a_time(runtime, peak, photos):
    """Two inference threads, batches of one image, 16 requests from 8 clients: on ONNX Runtime two
    forwards run at once (the second on its one-thread session), in eager PyTorch one at a time (two
    OpenMP teams would share the cores); every answer equals the one given alone."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import make_settings

    settings = make_settings(runtime=runtime, max_batch_size=1, inference_threads=2)
    with TestClient(create_app(settings)) as client:
        _settled(client)
        alone = predict(client, photos["coffee"]).json()
        assert alone["runtime"] == ("onnxruntime" if runtime == "auto" else "torch")
        with ThreadPoolExecutor(8) as clients:
            answers = list(clients.map(lambda _: predict(client, photos["coffee"]), range(16)))
        status = client.get("/api/predict/worker").json()
    assert status["inference_threads"] == 2
    assert status["peak_concurrent_forwards"] == {"efficientnet_lite0": peak}
    assert status["batch_sizes"] == {"1": 17}
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert [p["index"] for p in answer.json()["predictions"]] == [p["index"] for p in alone["predictions"]]
        assert [p["probability"] for p in answer.json()["predictions"]] == pytest.approx(
            [p["probability"] for p in alone["predictions"]], abs=1e-5)


def test_a_full_queue_answers_busy(tmp_path, photos):
    app = create_app(Settings(cache_dir=tmp_path, warm_cache=False, device="cpu", max_queue=1))
    worker = app.state.inference
    coffee = photos["coffee"].read_bytes()

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            waiting = asyncio.create_task(client.post("/api/predict", **_multipart(coffee)))
            await _wait_until(lambda: worker.queued == 1, "one request queued")
            refused = await client.post("/api/predict", **_multipart(coffee))
            worker.start()
            served = await waiting
            after = await client.post("/api/predict", **_multipart(coffee))
        worker.stop()
        return refused, served, after

    refused, served, after = asyncio.run(scenario())
    assert_error(refused, 503, "busy")
    assert int(refused.headers["retry-after"]) >= 1
    assert labels(served)[0] == labels(after)[0] == "espresso"


def test_images_being_decoded_hold_their_place_in_the_queue(photos):
    """With max_queue 2, two uploads slow to decode (7000x7000 PNGs of a few hundred KB) are admitted and
    a third request is told 503 busy at once, though nothing is queued for the forward yet."""
    from tests.conftest import make_settings

    app = create_app(make_settings(max_queue=2))
    worker = app.state.inference
    slow = io.BytesIO()
    Image.new("RGB", (7000, 7000)).save(slow, "PNG")

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            admitted = [asyncio.create_task(client.post("/api/predict", **_multipart(slow.getvalue())))
                        for _ in range(2)]
            await _wait_until(lambda: worker.preprocessing == 2, "two uploads being decoded (about 0.5 s each)")
            status = (await client.get("/api/predict/worker")).json()
            # at once, or never: the worker is not started, so an admitted request would wait here for good
            refused = await asyncio.wait_for(client.post("/api/predict", **_multipart(photos["coffee"].read_bytes())), 30)
            decoding_meanwhile = worker.preprocessing  # refused on arrival, not once the others are decoded
            worker.start(preload_entries(app.state.settings))
            served = await asyncio.gather(*admitted)
        worker.stop()
        return status, refused, decoding_meanwhile, served

    status, refused, decoding_meanwhile, served = asyncio.run(scenario())
    assert status["preprocessing"] + status["queued"] == 2 and decoding_meanwhile >= 1
    assert_error(refused, 503, "busy")
    assert [r.status_code for r in served] == [200, 200]
    assert all("one flat colour (blank)" in r.json()["notes"][0] for r in served)


# -- the page's data and the examples -----------------------------------------

def _settled(client) -> None:
    """No model being prepared (the start-up preload), so two reads of the state agree."""
    for _ in range(600):
        if not client.get("/api/predict/worker").json()["preparing"]:
            return
        time.sleep(0.1)
    raise AssertionError("a model is still being prepared after a minute")


def test_page_data_equals_its_json_twin(client, photos):
    """The page lists the models that can predict (its twin: ?available=true),
    so it stays small; the whole catalog, with each reason, stays in the API."""
    _settled(client)
    assert labels(predict(client, photos["coffee"]))[0] == "espresso"  # the default model is loaded
    everything = client.get("/api/predict/models").json()
    api = client.get("/api/predict/models", params={"available": "true"}).json()
    page = client.get("/predict")
    assert page.status_code == 200 and len(page.content) < 100_000, len(page.content)
    embedded = re.search(r'<script type="application/json" id="predict-data">(.*?)</script>', page.text, re.S)
    assert json.loads(embedded.group(1)) == api
    assert {m["id"] for m in api["models"]} == {m["id"] for m in everything["models"] if m["available"]}
    assert {"efficientnet_lite0", "lenet5"} <= {m["id"] for m in api["models"]}
    missing = client.get("/api/predict/models", params={"available": "false"}).json()
    assert all(not m["available"] and m["state"] == "unavailable" for m in missing["models"])
    assert len(api["models"]) + len(missing["models"]) == len(everything["models"]) == len(list_models())
    assert api["counts"] == everything["counts"] == missing["counts"]
    assert api["counts"]["available"] == len(api["models"]) and sum(api["counts"].values()) == len(list_models())
    assert f"{api['counts']['downloadable']:,} publish weights that are not on this" in page.text
    by_id = {m["id"]: m for m in everything["models"]}
    assert by_id["efficientnet_lite0"]["available"] and api["default_model"] == "efficientnet_lite0"
    assert by_id["efficientnet_lite0"]["state"] == "ready"
    assert not by_id["vgg16"]["available"] and "convzoo weights fetch vgg16" in by_id["vgg16"]["reason"]
    assert by_id["nin"]["preprocessing"] is None
    assert by_id["resnet50"]["preprocessing"] == {
        "kind": "image", "input_size": [3, 224, 224], "resize": 232, "crop": 224, "interpolation": "bilinear",
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "description": None}
    assert sorted(by_id) == sorted(entry.id for entry in list_models())
    assert_error(client.get("/api/predict/models", params={"available": "maybe"}), 422, "invalid_parameter")


def test_examples_are_served_by_name_only(client, photos):
    examples = {e["name"]: e for e in client.get("/api/predict/models").json()["examples"]}
    assert {"chelsea", "coffee", "grace_hopper"} <= set(examples)
    response = client.get(examples["chelsea"]["url"])
    assert response.status_code == 200 and response.content == photos["chelsea"].read_bytes()
    assert response.headers["content-type"] == "image/png"
    for name in ("nope", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "chelsea.png"):
        assert_error(client.get(f"/api/predict/examples/{name}"), 404, "not_found")
