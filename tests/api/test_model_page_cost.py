"""The model page under load (issue 11): it never waits behind other pages' pool jobs,
keeps the pool's answers it did not wait for, and its table holds the JSON twin's rows."""

from __future__ import annotations

import time

import pytest

from app.zoo.schemas import LayersResponse, ModelDetail


@pytest.mark.parametrize("model_id", ["alexnet", "googlenet", "inception_v3", "timm-deit_tiny_patch16_224", "timm-mvitv2_tiny"])
def test_the_page_table_holds_the_json_twins_rows(client, model_id):
    """Convs, pools (ceil mode, adaptive), linears, attention, MViTv2's unrecorded pools: the
    twin's bytes are its schema's, and the page lists the same rows, every one."""
    body = client.get(f"/api/models/{model_id}/layers").content
    assert LayersResponse.model_validate_json(body).model_dump_json().encode() == body
    page = client.get(f"/models/{model_id}")  # the same rows, every one in the table
    rows = page.context["layers"].layers
    assert [row.model_dump(mode="json") for row in rows] == client.get(f"/api/models/{model_id}/layers").json()["layers"]
    assert len(rows) == page.text.count('data-row="')


def test_the_page_keeps_the_inference_form_the_pool_worked_out(client):
    """The page waits for the re-parameterised form a moment at most; the pool's answer is kept
    as it comes, so a later view shows it without the JSON twin asking for it."""
    deadline = time.monotonic() + 120
    while "re-parameterised for inference" not in (page := client.get("/models/timm-mobileone_s1")).text:
        assert time.monotonic() < deadline, "no view of the page ever showed the inference form"
        time.sleep(0.5)
    model: ModelDetail = page.context["model"]
    assert model.inference_form.params < model.totals.params
    assert f'data-form-total="params">{model.inference_form.params:,}<' in page.text
    assert client.get("/api/models/timm-mobileone_s1").json()["inference_form"] == model.inference_form.model_dump()
