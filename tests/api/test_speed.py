"""The speed API through HTTP: not measured -> measure -> job -> cached result
(also for a fresh app on the same cache), 409 while a job runs, cancelling,
parameter errors, the /speed page and its JSON twin, and `convzoo bench`."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from app.cli import main
from app.main import create_app
from app.speed.data import best_under, fit_latency, frontier
from models.registry import list_models

# Tiny, with a time budget a busy shared machine cannot exhaust (it would skip batch 2).
TINY = {"batch_sizes": [1, 2], "resolution": 64, "warmup": 1, "repeats": 2, "time_budget_s": 600}
ENDED = ("done", "failed", "cancelled")


def wait(client, job_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ENDED:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture(scope="module")
def measured(client) -> dict:
    """squeezenet1_1 measured once at 64 px for this module."""
    response = client.post("/api/models/squeezenet1_1/speed", json=TINY)
    assert response.status_code == 202
    job = wait(client, response.json()["id"])
    assert job["status"] == "done", job
    return job


def test_unmeasured_model_is_404_not_measured(client):
    response = client.get("/api/models/mnasnet0_5/speed")
    assert response.status_code == 404 and error_code(response) == "not_measured"
    assert "POST /api/models/mnasnet0_5/speed" in response.json()["error"]["message"]
    assert client.get("/api/models/mnasnet0_5/speed/figure").json() == {"measured": False, "figure": None}


def test_unknown_model_and_job_are_404(client):
    assert error_code(client.get("/api/models/nope/speed")) == "unknown_model"
    assert error_code(client.post("/api/models/nope/speed", json=TINY)) == "unknown_model"
    assert error_code(client.post("/api/speed/measure-all", json={"models": ["nope"]})) == "unknown_model"
    for response in (client.get("/api/jobs/nope"), client.post("/api/jobs/nope/cancel"), client.delete("/api/jobs/nope")):
        assert response.status_code == 404 and error_code(response) == "not_found"


def test_measure_returns_a_job_whose_result_is_cached(client, measured, settings):
    assert measured["kind"] == "model" and measured["models"] == ["squeezenet1_1"]
    assert measured["progress"]["fraction"] == 1.0 and measured["progress"]["model_count"] == 1
    assert measured["outcomes"] == [{"model_id": "squeezenet1_1", "status": "measured", "error": None}]
    result = measured["result"]
    assert result["input_shape"] == [3, 64, 64] and result["device"]["kind"] == "cpu"
    assert [b["batch_size"] for b in result["batches"]] == [1, 2]
    assert all(b["images_per_s"] > 0 and b["p90_ms"] >= b["median_ms"] for b in result["batches"])

    body = client.get("/api/models/squeezenet1_1/speed").json()
    assert body["id"] == "squeezenet1_1" and body["results"][0] == result
    # On disk under the device's key, and a fresh app on the same cache serves it.
    [path] = (settings.cache_dir / "speed").glob("*/squeezenet1_1.json")
    assert json.loads(path.read_text())["results"]["64x64-float32"] == result
    fresh = TestClient(create_app(settings))
    assert fresh.get("/api/models/squeezenet1_1/speed").json() == body
    drawn = fresh.get("/api/models/squeezenet1_1/speed/figure").json()
    assert drawn["measured"]
    figure = drawn["figure"]
    assert [t["x"] for t in figure["data"]] == [[1, 2], [1, 2]]
    assert figure["data"][1]["yaxis"] == "y2" and "images/s" in figure["layout"]["yaxis2"]["title"]["text"]


def test_location_header_and_job_listing(client, measured):
    listing = client.get("/api/jobs").json()
    assert measured["id"] in [job["id"] for job in listing["jobs"]]
    response = client.post("/api/models/squeezenet1_0/speed", json={**TINY, "batch_sizes": [1]})
    assert response.status_code == 202
    assert response.headers["location"] == f"/api/jobs/{response.json()['id']}"
    wait(client, response.json()["id"])


def test_409_while_running_and_cancelling_measure_all(client):
    models = ["resnet18", "mobilenet_v2", "googlenet", "densenet121", "regnet_x_400mf"]
    response = client.post("/api/speed/measure-all",
                           json={**TINY, "batch_sizes": [1, 2, 4], "repeats": 5, "models": models})
    assert response.status_code == 202
    job = response.json()
    assert job["kind"] == "all" and job["models"] == models and job["progress"]["model_count"] == 5

    busy = client.post("/api/models/squeezenet1_1/speed", json=TINY)
    assert busy.status_code == 409 and error_code(busy) == "conflict" and job["id"] in busy.json()["error"]["message"]
    assert client.post("/api/speed/measure-all", json=TINY).status_code == 409
    assert client.get("/api/jobs").json()["running"] == job["id"]

    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    ended = wait(client, job["id"])
    assert ended["status"] == "cancelled"
    assert len(ended["outcomes"]) < len(models)
    assert client.get("/api/jobs").json()["running"] is None
    assert client.delete(f"/api/jobs/{job['id']}").json()["status"] == "cancelled"  # idempotent


def test_measure_all_skips_what_is_measured(client, measured):
    response = client.post("/api/speed/measure-all", json={**TINY, "models": ["squeezenet1_1"]})
    job = wait(client, response.json()["id"])
    assert job["status"] == "done"
    assert job["outcomes"] == [{"model_id": "squeezenet1_1", "status": "skipped", "error": None}]


@pytest.mark.parametrize("body, fragment", [
    ({"batch_sizes": [4, 2]}, "increasing"),
    ({"batch_sizes": []}, "batch_sizes"),
    ({"batch_sizes": [0]}, "between 1"),
    ({"dtype": "float16"}, "GPU"),
    ({"dtype": "int8"}, "dtype"),
    ({"resolution": 4}, "resolution"),
    ({"resolution": 16}, "cannot take input"),  # too small for SqueezeNet's pooling
    ({"repeats": 0}, "repeats"),
    ({"time_budget_s": 0}, "time_budget_s"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_parameters_are_422(client, body, fragment):
    response = client.post("/api/models/squeezenet1_1/speed", json=body)
    assert response.status_code == 422 and error_code(response) == "invalid_parameter"
    assert fragment in response.json()["error"]["message"]


def test_405_names_every_method_of_the_path(client):
    """GET and POST on one path are two routes; the Allow header names both."""
    for method, path, allow in (("PUT", "/api/models/squeezenet1_1/speed", "GET, POST"),
                                ("PUT", "/api/jobs/abc", "GET, DELETE"), ("GET", "/api/jobs/abc/cancel", "POST")):
        response = client.request(method, path)
        assert response.status_code == 405 and error_code(response) == "method_not_allowed"
        assert response.headers["allow"] == allow


def test_bad_page_parameters_are_422(client):
    for query in ("budget_ms=0", "budget_ms=fast", "dtype=int8"):
        response = client.get(f"/api/speed?{query}")
        assert response.status_code == 422 and error_code(response) == "invalid_parameter"
    assert client.post("/api/speed/measure-all", json={"models": []}).status_code == 422


def test_speed_page_json_twin_and_budget(client, measured):
    body = client.get("/api/speed?budget_ms=1000000").json()
    rows = {row["id"]: row for row in body["rows"]}
    assert set(rows) == {entry.id for entry in list_models()}
    order = list(rows)   # natural order of names: ResNet-18 < 34 < 50 < 101 < 152
    assert [order.index(f"resnet{n}") for n in (18, 34, 50, 101, 152)] == sorted(
        order.index(f"resnet{n}") for n in (18, 34, 50, 101, 152))
    row = rows["squeezenet1_1"]
    batch1 = measured["result"]["batches"][0]
    assert row["measured"] and row["latency_ms"] == batch1["median_ms"] and row["p90_ms"] == batch1["p90_ms"]
    assert row["macs"] == client.get("/api/models/squeezenet1_1/layers?resolution=64").json()["totals"]["macs"]
    assert row["best_images_per_s"] == max(b["images_per_s"] for b in measured["result"]["batches"])
    assert not rows["mnasnet0_5"]["measured"] and rows["mnasnet0_5"]["latency_ms"] is None
    # Every measured model fits a huge budget; the best is the most accurate of them.
    fitting = [r for r in body["rows"] if r["latency_ms"] and r["top1"] is not None]
    assert body["budget"]["fitting"] == len(fitting)
    assert rows[body["budget"]["best"]]["top1"] == max(r["top1"] for r in fitting)
    assert client.get("/api/speed?budget_ms=0.000001").json()["budget"] == {
        "budget_ms": 0.000001, "best": None, "fitting": 0, "runtime": None, "latency_ms": None}

    html = client.get("/speed?budget_ms=1000000").text
    embedded = re.search(r'<script type="application/json" id="speed-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(embedded) == body
    assert "Measured speed" in html and 'data-model="squeezenet1_1"' in html
    assert f"<strong>{rows[body['budget']['best']]['name']}</strong>" in html
    assert '<a href="/speed">Speed</a>' in html  # in the nav
    # Another variant: nothing was measured in bfloat16 with channels_last here.
    query = "dtype=bfloat16&channels_last=true"
    other = client.get(f"/api/speed?{query}").json()
    assert other["dtype"] == "bfloat16" and other["channels_last"] and not any(r["measured"] for r in other["rows"])
    html = client.get(f"/speed?{query}").text
    embedded = re.search(r'<script type="application/json" id="speed-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(embedded) == other and '<option value="bfloat16" selected>' in html
    missing = client.get("/speed?model=nope")
    assert missing.status_code == 404 and "no model called “nope”" in missing.text  # the error page, for people
    assert 'data-speed-model="squeezenet1_1"' in client.get("/speed?model=squeezenet1_1").text


def test_fit_frontier_and_budget_rules():
    from app.speed.data import SpeedRow

    def row(i, macs, ms, top1):
        return SpeedRow(id=f"m{i}", name=f"M{i}", family="F", top1=top1, measured=True, macs=macs, latency_ms=ms,
                        fastest_ms=ms, fastest_runtime="eager")

    rows = [row(1, 10**6, 1.0, 60.0), row(2, 10**8, 10.0, 70.0), row(3, 10**7, 20.0, 65.0), row(4, 10**9, 30.0, 80.0)]
    exact = fit_latency([row(i, 10 ** (6 + i), 2 * 10 ** (0.5 * i), 50.0) for i in range(4)])
    assert exact.slope == pytest.approx(0.5) and exact.intercept == pytest.approx(0.30103 - 3.0, abs=1e-5)
    assert fit_latency(rows[:1]) is None
    assert frontier(rows) == ["m1", "m2", "m4"]  # m3 is slower and less accurate than m2
    assert best_under(rows, 25.0).best == "m2" and best_under(rows, 25.0).fitting == 3
    assert best_under(rows, 0.5).best is None
    # m4 runs in 12 ms on ONNX Runtime: within 25 ms on that runtime, it is the best.
    rows[3] = rows[3].model_copy(update={"fastest_ms": 12.0, "fastest_runtime": "ONNX Runtime"})
    answer = best_under(rows, 25.0)
    assert (answer.best, answer.runtime, answer.latency_ms, answer.fitting) == ("m4", "ONNX Runtime", 12.0, 4)


def test_cli_bench_json_and_table(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path))
    argv = ["bench", "squeezenet1_1", "--batch", "1,2", "--resolution", "64", "--warmup", "1", "--repeats", "2"]
    assert main([*argv, "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [b["batch_size"] for b in results[0]["batches"]] == [1, 2]
    assert list(tmp_path.glob("speed/*/squeezenet1_1.json"))  # saved for the app
    assert main([*argv, "--no-save"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"squeezenet1_1\s+float32\s+64x64\s+1\s+[\d.]+", table) and "images/s" in table
    assert main(["bench", "nope"]) == 2
    assert main(["bench", "squeezenet1_1", "--device", "tpu"]) == 2
    assert main(["bench", "squeezenet1_1", "--dtype", "float16"]) == 2


def test_onnx_runtime_beside_eager_on_the_page_and_in_the_budget(client, measured):
    """The same constant weights measured on ONNX Runtime: its own cached result,
    listed beside eager for the model, and the budget answer uses the faster."""
    response = client.post("/api/models/squeezenet1_1/speed", json={**TINY, "runtime": "onnxruntime"})
    job = wait(client, response.json()["id"], timeout_s=300)
    assert job["status"] == "done", job
    result = job["result"]
    assert result["runtime"] == "onnxruntime" and result["variant"] == "float32-onnxruntime"
    assert re.search(r"ONNX Runtime [\d.]+, CPU provider: logits within", result["runtime_detail"])
    assert all(b["images_per_s"] > 0 and b["p90_ms"] >= b["median_ms"] for b in result["batches"])

    model = client.get("/api/models/squeezenet1_1/speed").json()
    by_variant = {r["variant"]: r for r in model["runtimes"]}
    assert list(by_variant) == ["float32", "float32-onnxruntime"]  # eager first
    eager_ms = measured["result"]["batches"][0]["median_ms"]
    ort_ms = result["batches"][0]["median_ms"]
    assert by_variant["float32-onnxruntime"]["latency_ms"] == ort_ms
    assert by_variant["float32-onnxruntime"]["vs_eager"] == pytest.approx(eager_ms / ort_ms)
    assert by_variant["float32-onnxruntime"]["label"] == "ONNX Runtime"
    assert client.get("/api/models/squeezenet1_1/speed/figure").json()["runtimes"] == model["runtimes"]

    page = client.get("/api/speed?runtime=onnxruntime").json()
    row = next(r for r in page["rows"] if r["id"] == "squeezenet1_1")
    assert page["runtime"] == "onnxruntime" and row["variant"] == "float32-onnxruntime" and row["latency_ms"] == ort_ms
    assert row["runtimes"] == model["runtimes"]
    assert row["fastest_ms"] == min(eager_ms, ort_ms)
    # A budget between the two latencies: the model fits only on the faster runtime.
    faster, slower = sorted([(eager_ms, "eager"), (ort_ms, "ONNX Runtime")])
    budget = (faster[0] + slower[0]) / 2
    rows_fitting = [r for r in client.get(f"/api/speed?budget_ms={budget}").json()["rows"]
                    if r["fastest_ms"] and r["top1"] is not None and r["fastest_ms"] <= budget]
    answer = client.get(f"/api/speed?budget_ms={budget}").json()["budget"]
    assert answer["fitting"] == len(rows_fitting) and "squeezenet1_1" in {r["id"] for r in rows_fitting}
    if answer["best"] == "squeezenet1_1":
        assert (answer["runtime"], answer["latency_ms"]) == (faster[1], faster[0])
    html = client.get("/speed").text
    assert 'class="speed-runtimes-all"' in html and '<tr data-id="squeezenet1_1">' in html
    assert client.post("/api/models/squeezenet1_1/speed", json={**TINY, "runtime": "onnxruntime",
                                                                  "dtype": "bfloat16"}).status_code == 422
