"""/api/lab/numbers and /lab/numbers: every figure the course's slides quote,
recomputed by the engine, with its verdict. The expected values below are
worked out by hand from the networks' definitions (the papers, torchvision's
metadata), independently of the engine that computes them."""

from __future__ import annotations

import pytest

from app.lab.numbers import verdict_for

# AlexNet, grouped as published / on one GPU (every conv ungrouped), layer by layer.
ALEXNET_ONE_GPU_PARAMS = ((11 * 11 * 3 + 1) * 96 + (5 * 5 * 96 + 1) * 256 + (3 * 3 * 256 + 1) * 384
                          + (3 * 3 * 384 + 1) * 384 + (3 * 3 * 384 + 1) * 256
                          + (6 * 6 * 256 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 1000)
ALEXNET_ONE_GPU_MACS = (55 * 55 * 96 * 11 * 11 * 3 + 27 * 27 * 256 * 5 * 5 * 96 + 13 * 13 * 384 * 3 * 3 * 256
                        + 13 * 13 * 384 * 3 * 3 * 384 + 13 * 13 * 256 * 3 * 3 * 384
                        + 6 * 6 * 256 * 4096 + 4096 * 4096 + 4096 * 1000)
ALEXNET_PAPER_MACS = ALEXNET_ONE_GPU_MACS - (27 * 27 * 256 * 5 * 5 * 96 + 13 * 13 * 384 * 3 * 3 * 384
                                             + 13 * 13 * 256 * 3 * 3 * 384) // 2
# The CS231n-style VGG-16 table's rows: (output values, weights without biases).
VGG_ROWS = [
    (224 * 224 * 3, 0), (224 * 224 * 64, 3 * 3 * 3 * 64), (224 * 224 * 64, 3 * 3 * 64 * 64), (112 * 112 * 64, 0),
    (112 * 112 * 128, 3 * 3 * 64 * 128), (112 * 112 * 128, 3 * 3 * 128 * 128), (56 * 56 * 128, 0),
    (56 * 56 * 256, 3 * 3 * 128 * 256), (56 * 56 * 256, 3 * 3 * 256 * 256), (56 * 56 * 256, 3 * 3 * 256 * 256),
    (28 * 28 * 256, 0), (28 * 28 * 512, 3 * 3 * 256 * 512), (28 * 28 * 512, 3 * 3 * 512 * 512),
    (28 * 28 * 512, 3 * 3 * 512 * 512), (14 * 14 * 512, 0), (14 * 14 * 512, 3 * 3 * 512 * 512),
    (14 * 14 * 512, 3 * 3 * 512 * 512), (14 * 14 * 512, 3 * 3 * 512 * 512), (7 * 7 * 512, 0),
    (4096, 7 * 7 * 512 * 4096), (4096, 4096 * 4096), (1000, 4096 * 1000),
]
VGG_TABLE_TOTAL = sum(values for values, _ in VGG_ROWS)
# torchvision's GoogLeNet inception modules 3a..5b: (1x1, 3x3 reduce, 3x3, 5x5 reduce, "5x5" (3x3 there), pool proj).
GOOGLENET_MODULES = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
                     (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
                     (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]
GOOGLENET_CONV_CHANNELS = 64 + 64 + 192 + sum(sum(m) for m in GOOGLENET_MODULES)  # one batch norm after each conv
INCEPTION_REDUCED = 28 * 28 * (64 * 256 * 3 + 128 * 256 + 192 * 3 * 3 * 64 + 96 * 5 * 5 * 64)

EXPECTED = {
    "fgv-alexnet-params": (60_965_224, "other_variant"),
    "fgv-alexnet-macs": (ALEXNET_PAPER_MACS, "other_variant"),
    "ece285-alexnet-params": (60_965_224, "rounded"),
    "cs231n-alexnet-conv1": ((11 * 11 * 3 + 1) * 96, "rounded"),
    "curriculum-alexnet-conv1-side": ((227 - 11) // 4 + 1, "exact"),
    "ece285-zfnet-params": (62_357_608, "wrong"),
    "fgv-vgg16-params": (138_357_544, "rounded"),
    "ece285-vgg16-params": (138_357_544, "rounded"),
    "curriculum-vgg16-macs": (15_470_264_320, "rounded"),
    "cs231n-vgg16-total-memory": (VGG_TABLE_TOTAL, "wrong"),
    "cs231n-vgg16-total-bytes": (4 * VGG_TABLE_TOTAL, "wrong"),
    "d2l-lenet-fc": (16 * 5 * 5 * 120, "exact"),
    "d2l-alexnet-fc": (256 * 6 * 6 * 4096, "other_variant"),
    "d2l-vgg16-fc": (512 * 7 * 7 * 4096, "rounded"),
    "curriculum-vgg16-fc": (102_760_448, "exact"),
    "ece285-googlenet-params": (6_624_904, "wrong"),
    "cs231n-inception-naive": (28 * 28 * (128 * 256 + 192 * 9 * 256 + 96 * 25 * 256), "rounded"),
    "cs231n-inception-reduced": (INCEPTION_REDUCED, "wrong"),
    "curriculum-bottleneck-480-weights": (5 * 5 * 480 * 48, "exact"),
    "curriculum-bottleneck-480-macs": (14 * 14 * 48 * 5 * 5 * 480, "rounded"),
    "curriculum-bottleneck-480-reduced-weights": (480 * 16 + 5 * 5 * 16 * 48, "rounded"),
    "curriculum-bottleneck-480-reduced-macs": (14 * 14 * (480 * 16 + 5 * 5 * 16 * 48), "rounded"),
    "curriculum-bottleneck-192-macs": (28 * 28 * 32 * 5 * 5 * 192, "rounded"),
    "curriculum-bottleneck-192-reduced-macs": (28 * 28 * (192 * 16 + 5 * 5 * 16 * 32), "rounded"),
    "curriculum-rf-two": (5, "exact"),
    "curriculum-rf-three": (7, "exact"),
    "curriculum-rf-ratio": (round(49 / 27, 6), "rounded"),
    "ece285-resnet152-params": (60_192_808, "rounded"),
    "ece285-densenet-params": (20_013_928, "rounded"),
    "ece285-mobilenet-params": (4_231_976, "rounded"),
    "romanian-mobilenet-params": (4_231_976, "rounded"),
    "romanian-mobilenet-macs": (568_740_352, "rounded"),
    "curriculum-lenet-params": (61_706, "rounded"),
    "ece285-fully-connected": (200 * 200 * 40_000, "exact"),
    "ece285-locally-connected": (40_000 * 10 * 10, "exact"),
    "ece285-shared-weights": (10 * 10, "exact"),
    **{f"cs231n-vgg16-row{i}-memory": (values, "exact" if values in (4096, 1000) else "rounded")
       for i, (values, _) in enumerate(VGG_ROWS)},
    **{f"cs231n-vgg16-row{i}-weights": (weights, "exact") for i, (_, weights) in enumerate(VGG_ROWS)},
}
VARIANTS = {
    "fgv-alexnet-params": ALEXNET_ONE_GPU_PARAMS,
    "fgv-alexnet-macs": ALEXNET_ONE_GPU_MACS,
    "d2l-alexnet-fc": 256 * 5 * 5 * 4096,
    # torchvision's parameters less batch norm (2 per channel) and the FC bias, with 5x5 kernels for 3x3 ones.
    "ece285-googlenet-params": 6_624_904 - 2 * GOOGLENET_CONV_CHANNELS - 1000
    + sum(m[3] * m[4] * (25 - 9) for m in GOOGLENET_MODULES),
}


@pytest.fixture(scope="module")
def claims(client) -> dict[str, dict]:
    response = client.get("/api/lab/numbers")
    assert response.status_code == 200
    return {c["id"]: c for c in response.json()["claims"]}


def test_every_claim_is_checked(claims):
    assert set(claims) == set(EXPECTED)


@pytest.mark.parametrize("claim_id", sorted(EXPECTED))
def test_claim_computed_and_verdict(claims, claim_id):
    claim = claims[claim_id]
    computed, verdict = EXPECTED[claim_id]
    assert claim["computed"] == computed
    assert claim["verdict"] == verdict
    assert claim["explanation"] and claim["links"] and claim["source"] and claim["unit"]
    if claim_id in VARIANTS:
        assert claim["variant"]["value"] == VARIANTS[claim_id]


def test_counts_and_model_filter(client, claims):
    body = client.get("/api/lab/numbers").json()
    assert body["counts"] == {v: sum(c["verdict"] == v for c in claims.values())
                              for v in ("exact", "rounded", "other_variant", "wrong")}
    vgg = client.get("/api/lab/numbers", params={"model": "vgg16"}).json()
    assert {c["id"] for c in vgg["claims"]} == {i for i, c in claims.items() if "vgg16" in c["models"]}
    assert len(vgg["claims"]) == 7 + 2 * len(VGG_ROWS)
    topics = [c["topic"] for c in body["claims"]]
    runs = [t for i, t in enumerate(topics) if i == 0 or topics[i - 1] != t]
    assert len(runs) == len(set(runs)), "each topic is listed in one piece"
    assert client.get("/api/lab/numbers", params={"model": ""}).json() == body   # an empty filter is no filter
    missing = client.get("/api/lab/numbers", params={"model": "vgg17"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_model"


def test_links_lead_somewhere(client, claims):
    for claim in claims.values():
        for link in claim["links"]:
            path = link["href"].split("#")[0]
            assert client.get(path).status_code == 200, link


def test_row_links_name_real_rows(client, claims):
    """A link to a layer row (#layer-PATH) names a row of that model's table."""
    for claim in claims.values():
        for link in claim["links"]:
            if "#layer-" in link["href"]:
                page, row = link["href"].split("#layer-")
                model_id = page.rsplit("/", 1)[-1]
                paths = {r["path"] for r in client.get(f"/api/models/{model_id}/layers").json()["layers"]}
                assert row in paths, link


def test_page_data_equals_api(client):
    response = client.get("/lab/numbers")
    assert response.status_code == 200 and response.template.name == "lab_numbers.html"
    assert response.context["data"].model_dump(mode="json") == client.get("/api/lab/numbers").json()
    assert "other variant" in response.text and 'id="fgv-alexnet-params"' in response.text


@pytest.mark.parametrize("quoted, step, value, variant, below, verdict", [
    (55, 0, 55, None, False, "exact"),
    (138_000_000, 1_000_000, 138_357_544, None, False, "rounded"),      # to the nearest
    (62_300_000, 100_000, 62_378_344, None, False, "rounded"),          # truncated
    (62_300_000, 100_000, 60_965_224, 62_378_344, False, "other_variant"),
    (358_000_000, 1_000_000, 271_351_808, None, False, "wrong"),
    (60_000_000, 0, 62_357_608, None, True, "wrong"),
    (60_000_000, 0, 59_000_000, None, True, "exact"),
])
def test_verdict_rules(quoted, step, value, variant, below, verdict):
    assert verdict_for(quoted, step, value, variant, below) == verdict
