"""The convzoo command line: summary in its three formats."""

import csv
import io
import json

import pytest

from app.cli import main


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path))


def test_summary_json_is_the_layers_api_body(capsys, client):
    assert main(["summary", "alexnet_paper", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == client.get("/api/models/alexnet_paper/layers").json()


def test_summary_table(capsys):
    assert main(["summary", "alexnet_paper"]) == 0
    out = capsys.readouterr().out
    assert "1x96x55x55" in out and "Total params: 60,965,224" in out


def test_summary_csv_at_a_resolution(capsys):
    assert main(["summary", "mobilenet_v2", "--resolution", "160", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    first_conv = next(row for row in rows if row["path"] == "features.0.0")
    assert first_conv["output_shape"] == "1x32x80x80"


def test_summary_of_an_unknown_model_fails_clearly(capsys):
    assert main(["summary", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
