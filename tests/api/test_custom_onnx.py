"""ONNX uploads counted by the zoo's engine: torchvision models exported in
the test give the zoo's MACs and receptive fields, and the zoo's parameters
less what the exporter folded; the id then works wherever a zoo id does."""

from __future__ import annotations

import gc
import hashlib
import html
import re
import subprocess
import sys
import uuid
from pathlib import Path

import onnx
import pytest

from app.cli import main as cli_main
from models.registry import get_entry
from tests.onnx_exports import distinct_weights, export, export_zoo_model, folded_batch_norm_channels

MODELS = ["resnet18", "mobilenet_v2", "googlenet", "densenet121", "vit_b_16"]


@pytest.fixture(scope="module")
def resnet18_upload(client):
    data = export_zoo_model("resnet18")
    response = client.post("/api/custom/onnx", files={"file": ("../../resnet.onnx", data)})
    assert response.status_code == 201, response.text
    return data, response.json()


@pytest.mark.parametrize("model_id", MODELS)
def test_exported_model_counts_as_the_zoo_model(client, model_id):
    data = export_zoo_model(model_id)
    response = client.post("/api/custom/onnx", files={"file": ("model.onnx", data)})
    assert response.status_code == 201, response.text
    card = response.json()
    assert card["id"] == "onnx-" + hashlib.sha256(data).hexdigest()[:16]
    zoo = client.get(f"/api/models/{model_id}").json()
    assert card["input_size"] == zoo["input_size"]
    assert card["macs"] == zoo["macs"]  # the same engine on the same layers: exactly, not only within 1%
    assert zoo["params"] - card["params"] == folded_batch_norm_channels(model_id, data)
    ours = client.get(f"/api/models/{card['id']}/layers").json()["layers"]
    theirs = client.get(f"/api/models/{model_id}/layers").json()["layers"]
    assert ours[-1]["receptive_field"] == theirs[-1]["receptive_field"]
    assert max(r["receptive_field"] or 0 for r in ours) == max(r["receptive_field"] or 0 for r in theirs)
    print(f"\n{model_id}: zoo {zoo['macs']:,} MACs {zoo['params']:,} params; ONNX {card['macs']:,} MACs "
          f"{card['params']:,} params; {len(data):,} bytes analysed in {card['analysis_ms']:.0f} ms")


def test_torch_export_graph_counts_as_the_zoo_model(client):
    """The dynamo exporter's graph: ReduceMean and Reshape in place of GlobalAveragePool and Flatten."""
    entry = get_entry("resnet18")
    data = export(distinct_weights(entry.build()), entry.input_size, dynamo=True)
    card = client.post("/api/custom/onnx", files={"file": ("dynamo.onnx", data)}).json()
    zoo = client.get("/api/models/resnet18").json()
    assert card["macs"] == zoo["macs"]
    assert zoo["params"] - card["params"] == folded_batch_norm_channels("resnet18", data)


def test_free_height_and_width_take_the_resolution(client):
    entry = get_entry("resnet18")
    model = onnx.load_from_string(export(entry.build(), entry.input_size, input_names=["image"],
                                         dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}}))
    model.doc_string = uuid.uuid4().hex  # a file the store has never seen, even with a cache kept between runs
    data = model.SerializeToString()
    refused = client.post("/api/custom/onnx", files={"file": ("free.onnx", data)})
    assert refused.status_code == 422 and "give a resolution" in refused.json()["error"]["message"]
    card = client.post("/api/custom/onnx", files={"file": ("free.onnx", data)}, data={"resolution": "160"}).json()
    assert card["input_size"] == [3, 160, 160]
    assert card["macs"] == client.get("/api/models/resnet18?resolution=160").json()["totals"]["macs"]
    at_224 = client.get(f"/api/models/{card['id']}?resolution=224").json()
    assert at_224["totals"]["macs"] == client.get("/api/models/resnet18").json()["macs"]


def test_an_upload_at_another_resolution_changes_nothing_another_user_sees(client):
    """Alice shares her upload at 160 px; Bob uploads the same file at 224: Alice's id (its page, layers,
    card) still shows 160 px and its MACs; Bob's is an id of its own. A graph of fixed size ignores the
    resolution: one id, whatever is asked."""
    entry = get_entry("resnet18")
    model = onnx.load_from_string(export(entry.build(), entry.input_size, input_names=["image"],
                                         dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}}))
    model.doc_string = uuid.uuid4().hex
    data = model.SerializeToString()
    alice = client.post("/api/custom/onnx", files={"file": ("free.onnx", data)}, data={"resolution": "160"}).json()
    macs_160 = client.get("/api/models/resnet18?resolution=160").json()["totals"]["macs"]
    bob = client.post("/api/custom/onnx", files={"file": ("free.onnx", data)}, data={"resolution": "224"}).json()
    assert bob["id"] != alice["id"] and bob["input_size"] == [3, 224, 224] and bob["cached"] is False
    assert bob["macs"] == client.get("/api/models/resnet18").json()["macs"]
    detail = client.get(f"/api/models/{alice['id']}").json()
    assert detail["input_size"] == [3, 160, 160] and detail["totals"]["macs"] == macs_160
    layers = client.get(f"/api/models/{alice['id']}/layers").json()
    assert layers["layers"][0]["output_shape"][2:] == [80, 80]  # the stem's stride-2 conv at 160 px
    again = client.post("/api/custom/onnx", files={"file": ("free.onnx", data)}, data={"resolution": "160"}).json()
    assert again["id"] == alice["id"] and again["cached"] is True

    fixed = export_zoo_model("resnet18")
    plain = client.post("/api/custom/onnx", files={"file": ("fixed.onnx", fixed)}).json()
    asked = client.post("/api/custom/onnx", files={"file": ("fixed.onnx", fixed)}, data={"resolution": "96"}).json()
    assert asked["id"] == plain["id"] and asked["input_size"] == [3, 224, 224] and asked["cached"] is True


def _resident_bytes() -> int:
    """This process's resident set size (the app runs in it, behind the TestClient)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident set size from Linux /proc")
def test_big_uploads_leave_no_memory_behind(client, resnet18_upload):
    """Each upload keeps only its graph without weights (kilobytes); before, the kept graph held the whole
    upload's protobuf arena: +45 MB resident per 45 MB ResNet-18 upload. Four new files may cost at most
    one file's size in all (allocator slack)."""
    model = onnx.load_from_string(resnet18_upload[0])
    size = len(resnet18_upload[0])

    def upload(tag: str) -> None:
        model.doc_string = f"{tag} {uuid.uuid4().hex}"  # a new file, analysed and kept
        response = client.post("/api/custom/onnx", files={"file": ("big.onnx", model.SerializeToString())})
        assert response.status_code == 201 and response.json()["cached"] is False

    upload("warm-up")  # the first pays for the allocator's pools and the parser
    gc.collect()
    before = _resident_bytes()
    for i in range(4):
        upload(str(i))
    gc.collect()
    grown = _resident_bytes() - before
    print(f"\nresident set after 4 uploads of {size / 1e6:.0f} MB: {grown / 1e6:+.0f} MB")
    assert grown < size


def test_the_pages_export_command_writes_one_file_that_uploads(client, tmp_path):
    """The command /custom gives, run as written with the venv's torch (its default exporter), in a
    process of its own (torch.export's tracer is not to share a process with the app's threads)."""
    page = client.get("/custom").text
    command = html.unescape(re.search(r'<code id="onnx-export-command">(.*?)</code>', page).group(1))
    script = ("import torch\nfrom torch import nn\nmodel = nn.Sequential(nn.Conv2d(3, 8, 7, stride=4), nn.ReLU(), "
              f"nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))\n{command}\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no model.onnx.data beside it
    response = client.post("/api/custom/onnx", files={"file": ("model.onnx", (tmp_path / "model.onnx").read_bytes())})
    assert response.status_code == 201, response.text
    assert response.json()["params"] == 3 * 8 * 49 + 8 + 8 * 10 + 10


def test_an_upload_is_named_after_its_file_where_the_graph_has_the_exporters_name(client, resnet18_upload):
    model = onnx.load_from_string(resnet18_upload[0])
    assert model.graph.name == "main_graph"
    model.doc_string = uuid.uuid4().hex  # a file the store has never seen under another name
    card = client.post("/api/custom/onnx", files={"file": ("../../resnet.onnx", model.SerializeToString())}).json()
    assert card["name"] == f"ONNX resnet ({card['id'][5:13]})"  # the file's name, not its path
    model.graph.name = "my_resnet"
    mine = client.post("/api/custom/onnx", files={"file": ("<b>x</b>.onnx", model.SerializeToString())}).json()
    assert mine["name"] == f"ONNX my_resnet ({mine['id'][5:13]})"


def test_same_file_again_costs_nothing(client, resnet18_upload):
    data, first = resnet18_upload
    again = client.post("/api/custom/onnx", files={"file": ("other-name.onnx", data)})
    assert again.status_code == 201
    assert again.json()["cached"] is True and again.json()["id"] == first["id"]


def test_upload_id_works_wherever_a_zoo_id_does(client, resnet18_upload, tmp_path, capsys, monkeypatch):
    data, card = resnet18_upload
    model_id = card["id"]
    page = client.get(card["url"])
    assert page.status_code == 200
    assert "folded batch norm" in page.text and "1,814,073,344" in page.text
    detail = client.get(f"/api/models/{model_id}").json()
    assert detail["source"] == "onnx" and detail["totals"]["macs"] == 1_814_073_344
    csv = client.get(f"/api/models/{model_id}/layers.csv")
    assert csv.status_code == 200 and "Conv2d" in csv.text
    compare = client.get(f"/api/compare?models=resnet18,{model_id}").json()
    assert [m["id"] for m in compare["models"]] == ["resnet18", model_id]
    assert client.get(f"/compare?models=resnet18,{model_id}").status_code == 200
    layers = client.get(f"/api/models/{model_id}/layers").json()["layers"]
    first_conv = next(r for r in layers if r["type"] == "Conv2d")
    assert first_conv["attributes"]["kernel_size"] == [7, 7] and first_conv["receptive_field"] == 7
    assert [f["kind"] for f in first_conv["formulas"]] == ["output_size", "params", "macs"]

    path = tmp_path / "resnet18.onnx"
    path.write_bytes(data)
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))
    assert cli_main(["summary", str(path), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert model_id in err
    assert re.search(r"^layer1_0_conv1_Conv,Conv2d,", out, re.M), out[:400]


def test_unknown_upload_id_is_404(client):
    response = client.get("/api/models/onnx-0123456789abcdef")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_model"
