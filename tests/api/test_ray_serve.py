"""The optional Ray Serve mode (`convzoo serve --ray`): a local Ray on
loopback (2 CPUs, no dashboard), the predictor deployed with two replicas and
Ray's batching, the web tier calling it through a real server. 32 concurrent
predictions answer what the embedded worker answers one at a time."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import make_settings, serving

# Read when ray is imported: a single-node Ray keeps to the loopback interface
# (by default it advertises the machine's own address, even when given 127.0.0.1).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

TIMEOUT_S = 120


@pytest.fixture(scope="module")
def ray_server():
    from app.main import create_app
    from app.predict.ray_serve import NAMESPACE, deploy

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", namespace=NAMESPACE,
             log_to_driver=False)
    try:
        assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]
        settings = make_settings(predictor="ray", max_batch_wait_ms=20)
        deploy(settings, replicas=2, cpus_per_replica=1)
        with serving(create_app(settings)) as base_url:
            yield base_url
    finally:
        serve.shutdown()
        ray.shutdown()


def test_32_concurrent_predictions_across_two_replicas_equal_the_embedded_worker_one_at_a_time(
        ray_server, client, photos):
    names = ["chelsea", "coffee", "rocket", "grace_hopper", "astronaut", "motorcycle", "camera", "chelsea"]
    images = [photos[name].read_bytes() for name in names] * 4
    assert len(images) == 32

    def predict(post, data: bytes) -> dict:
        response = post("/api/predict", files={"file": ("photo", data)}, data={"model": "efficientnet_lite0"})
        assert response.status_code == 200, response.text
        return response.json()

    embedded = [predict(client.post, data) for data in images]  # the session's app: the embedded worker
    with httpx.Client(base_url=ray_server, timeout=TIMEOUT_S, limits=httpx.Limits(max_connections=32)) as http, \
            ThreadPoolExecutor(32) as pool:
        together = list(pool.map(lambda data: predict(http.post, data), images))
        status = http.get("/api/predict/worker").json()

    assert status["predictor"] == "ray" and status["running"]
    assert len(status["replicas"]) == 2 and sum(status["replicas"].values()) == 32  # both replicas answered
    assert any(int(size) > 1 for size in status["batch_sizes"]), status  # Ray formed batches
    for alone, batched in zip(embedded, together):
        assert batched["model"] == alone["model"] == "efficientnet_lite0"
        assert [p["index"] for p in batched["predictions"]] == [p["index"] for p in alone["predictions"]]
        assert [p["label"] for p in batched["predictions"]] == [p["label"] for p in alone["predictions"]]
        # A batch runs other GEMM blockings than one image: the same numbers to float32 rounding.
        assert [p["probability"] for p in batched["predictions"]] == pytest.approx(
            [p["probability"] for p in alone["predictions"]], abs=1e-5)
