"""Hostile uploads: each gets its error, fast, and the server keeps serving.
Nothing is unpickled or executed; uploads are kept only under their hash."""

from __future__ import annotations

import io
import pickle
import re
import zipfile

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import convert_model_to_external_data
from torch import nn

from app.main import create_app
from tests.conftest import make_settings
from tests.onnx_exports import export

LIMIT = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def small_client(tmp_path_factory):
    """An app with an 8 MB upload limit and a store that holds two small Sequentials
    (no lifespan: nothing here needs the inference worker)."""
    settings = make_settings(cache_dir=tmp_path_factory.mktemp("hostile"), max_onnx_bytes=LIMIT,
                             custom_store_bytes=200)
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def tiny_onnx() -> bytes:
    return export(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)), (3, 8, 8))


def _upload(client, data: bytes, name: str = "model.onnx"):
    return client.post("/api/custom/onnx", files={"file": (name, data)})


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return response.json()["error"]["message"]


def _graph(nodes, inputs=("x",), output="y", opset=17) -> bytes:
    graph = helper.make_graph(
        nodes, "hostile", [helper.make_tensor_value_info(i, TensorProto.FLOAT, [1, 3, 8, 8]) for i in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def test_a_small_valid_upload_works(small_client, tiny_onnx):
    card = small_client.post("/api/custom/onnx", files={"file": ("tiny.onnx", tiny_onnx)}).json()
    assert card["params"] == 3 * 8 * 9 + 8 + 288 * 10 + 10
    assert card["macs"] == 6 * 6 * 8 * 27 + 288 * 10


@pytest.mark.parametrize("data", [
    b"not an onnx file at all\n" * 100,
    bytes(range(256)) * 64,
], ids=["text", "bytes"])
def test_not_onnx(small_client, data):
    assert "not" in _error(_upload(small_client, data), 400, "invalid_model_file")


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.97])
def test_truncated_protobuf(small_client, tiny_onnx, fraction):
    _error(_upload(small_client, tiny_onnx[:int(len(tiny_onnx) * fraction)]), 400, "invalid_model_file")


def test_photo_and_pickle_renamed_onnx_are_refused_and_never_run(small_client, photos, tmp_path):
    _error(_upload(small_client, photos["chelsea"].read_bytes(), "chelsea.onnx"), 400, "invalid_model_file")
    marker = tmp_path / "pickle-ran"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    _error(_upload(small_client, pickle.dumps(Payload()), "model.onnx"), 400, "invalid_model_file")
    assert not marker.exists()


def test_zip_bomb_renamed_onnx(small_client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.onnx", bytes(64 * 1024 * 1024))  # 64 MB of zeros in ~64 KB
    assert len(buffer.getvalue()) < LIMIT
    _error(_upload(small_client, buffer.getvalue(), "bomb.onnx"), 400, "invalid_model_file")


def test_over_the_size_limit_is_413(small_client):
    message = _error(_upload(small_client, bytes(LIMIT + 1)), 413, "too_large")
    assert f"{LIMIT:,}" in message


def test_external_data_is_refused(small_client, tiny_onnx, tmp_path):
    model = onnx.load_from_string(tiny_onnx)
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="../../etc/weights.bin",
                                   size_threshold=0)
    message = _error(_upload(small_client, model.SerializeToString()), 422, "unsupported_model")
    assert "external data" in message
    assert 'torch.onnx.export(model, torch.randn(1, 3, 224, 224), "model.onnx", external_data=False)' in message


def test_an_empty_graph_is_told_only_what_it_lacks(small_client):
    graph = helper.make_graph([], "empty", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    message = _error(_upload(small_client, data, "empty_graph.onnx"), 400, "invalid_model_file")
    assert message == "This is not a usable ONNX model: it has no graph nodes."


def test_a_graph_exported_without_its_weights_is_told_how_to_export_them(small_client):
    module = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    data = export(module, (3, 8, 8), export_params=False)
    assert len([i for i in onnx.load_from_string(data).graph.input]) > 2  # the weights are graph inputs
    message = _error(_upload(small_client, data), 422, "unsupported_model")
    assert "exported without its weights" in message and "export_params=True" in message
    assert "ConvZoo analyses graphs of one image input" not in message


def test_shape_errors_of_a_graph_name_the_node_not_a_layer_to_edit(small_client, tiny_onnx):
    model = onnx.load_from_string(tiny_onnx)
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 4  # the input no longer fits the weights
    message = _error(_upload(small_client, model.SerializeToString()), 422, "unsupported_model")
    assert "The graph cannot take input [1, 4, 8, 8]: node " in message
    assert "(Conv2d) needs 3 input channels (its weight says so) and gets a 1x4x8x8 input with 4" in message
    assert "in_channels" not in message and "OnnxGraph" not in message
    model_id = _upload(small_client, tiny_onnx).json()["id"]
    small = small_client.get(f"/api/models/{model_id}?resolution=2").json()["error"]["message"]
    assert "smaller than its 3x3 window" in small and "give the graph a larger input" in small
    wide = small_client.get(f"/api/models/{model_id}?resolution=10").json()["error"]["message"]
    assert "(Linear) needs 288 features" in wide and "gets a 1x512 tensor (512, from 8x8x8 = 512)" in wide
    assert "Set its" not in wide and "OnnxGraph" not in wide


@pytest.mark.parametrize("model_id", ["onnx-0123456789abcdef", "seq-0123456789abcdef"])
def test_an_unknown_upload_id_says_it_was_never_uploaded_or_was_evicted(small_client, model_id):
    message = _error(small_client.get(f"/api/models/{model_id}"), 404, "unknown_model")
    assert "never uploaded to this server, or it was evicted" in message and "in the zoo" not in message
    page = small_client.get(f"/models/{model_id}", headers={"accept": "text/html"})
    assert page.status_code == 404 and "never uploaded to this server" in page.text


def test_unsupported_ops_are_listed(small_client):
    data = _graph([helper.make_node("NonZero", ["x"], ["n"]), helper.make_node("Einsum", ["x"], ["e"], equation="ii"),
                   helper.make_node("Relu", ["x"], ["y"])])
    message = _error(_upload(small_client, data), 422, "unsupported_model")
    assert "Einsum, NonZero" in message


def test_a_graph_of_100000_nodes(small_client):
    nodes = [helper.make_node("Relu", [f"t{i}" if i else "x"], [f"t{i + 1}"]) for i in range(100_000)]
    nodes[-1].output[0] = "y"
    data = _graph(nodes)
    assert len(data) < LIMIT
    assert "100,000 nodes" in _error(_upload(small_client, data), 413, "too_large")


def test_free_input_size_needs_a_resolution(small_client):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "free",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    _error(_upload(small_client, data), 422, "invalid_parameter")
    card = small_client.post("/api/custom/onnx", files={"file": ("free.onnx", data)}, data={"resolution": "64"})
    assert card.status_code == 201 and card.json()["input_size"] == [3, 64, 64]
    # The same file at another resolution is another id; without one it is refused again.
    again = small_client.post("/api/custom/onnx", files={"file": ("free.onnx", data)}, data={"resolution": "224"})
    assert again.status_code == 201 and again.json()["id"] != card.json()["id"]
    assert again.json()["input_size"] == [3, 224, 224] and again.json()["cached"] is False
    assert "give a resolution" in _error(_upload(small_client, data), 422, "invalid_parameter")
    same = small_client.post("/api/custom/onnx", files={"file": ("free.onnx", data)}, data={"resolution": "224"})
    assert same.json()["input_size"] == [3, 224, 224] and same.json()["cached"] is True
    assert same.json()["id"] == again.json()["id"]


def test_server_keeps_serving_and_keeps_uploads_under_their_hash_only(small_client, tiny_onnx):
    _upload(small_client, tiny_onnx, "../../../etc/passwd.onnx")
    assert small_client.get("/api/health").status_code == 200
    store = small_client.app.state.custom_store.directory
    names = [p.name for p in store.iterdir()]
    assert names and all(re.fullmatch(r"(onnx|seq)-[0-9a-f]{16}\.(json|onnx)", name) for name in names), names


def test_store_evicts_the_least_recently_used(small_client):
    def add(channels: int) -> str:
        body = {"code": f"nn.Sequential(nn.Conv2d(3, {channels}, 3))", "input": [3, 16, 16]}
        response = small_client.post("/api/custom/sequential", json=body)
        assert response.status_code == 200, response.text
        return response.json()["id"]

    first, second = add(4), add(5)
    assert small_client.get(f"/api/models/{first}").status_code == 200  # first is now the more recent
    third = add(6)
    store = small_client.app.state.custom_store
    assert store.stored_bytes() <= 200
    assert small_client.get(f"/api/models/{second}").status_code == 404
    assert small_client.get(f"/api/models/{first}").status_code == 200
    assert small_client.get(f"/api/models/{third}").status_code == 200


def test_uploads_in_flight_are_bounded(small_client, tiny_onnx):
    state = small_client.app.state
    state.onnx_uploads_in_flight = 2  # as while two large uploads stream in
    try:
        response = _upload(small_client, tiny_onnx)
        assert _error(response, 503, "busy") and response.headers["Retry-After"] == "2"
    finally:
        state.onnx_uploads_in_flight = 0
    assert _upload(small_client, tiny_onnx).status_code == 201


def test_constant_arithmetic_never_allocates_what_the_graph_asks(small_client):
    """A Tile of a constant by 10^9 (32 TB as real values) is computed on meta: the upload just works."""
    graph = helper.make_graph(
        [helper.make_node("Tile", ["c", "r"], ["t"]), helper.make_node("Shape", ["t"], ["s"]),
         helper.make_node("Relu", ["x"], ["y"])], "tile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ones(4096, dtype=np.int64), "c"),
                     numpy_helper.from_array(np.array([10**9], dtype=np.int64), "r")])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert _upload(small_client, data).status_code == 201
