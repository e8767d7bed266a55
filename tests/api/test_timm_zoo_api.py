"""timm's whole zoo through the API: every architecture as timm-<arch>, the
course's timm models behind their timm- names, resolution rebuilds, the
catalog's server-side filters, sort and paging, the chart's filters, and the
CLI."""

from __future__ import annotations

import json

import pytest
import timm

from app.cli import main as cli_main
from models.registry import list_models
from models.timm_zoo import load_facts
from tests.conftest import analyse_course_models

COURSE_TIMM = {"inception_v4": "inception_v4", "inception_resnet_v2": "inception_resnet_v2",
               "legacy_xception": "xception", "nasnetalarge": "nasnetalarge", "senet154": "senet154",
               "mobilenetv1_100": "mobilenet_v1", "tf_efficientnet_lite0": "efficientnet_lite0"}


@pytest.fixture(scope="module")
def cards(client) -> dict[str, dict]:
    analyse_course_models(client.app)
    body = client.get("/api/models").json()
    assert body["total"] == len(body["models"])
    return {c["id"]: c for c in body["models"]}


def test_every_timm_architecture_is_in_the_catalog(cards):
    archs = timm.list_models()
    assert len(archs) == 1371  # timm 1.0.31
    course_timm = {e.timm_name for e in list_models() if e.timm is None and e.timm_name}
    assert set(COURSE_TIMM) <= course_timm  # Lite1/Lite2 too, where the course has them
    expected = {f"timm-{a}" for a in archs if a not in course_timm}
    assert expected <= set(cards)
    course = [c for c in cards.values() if c["source"] != "timm" or not c["id"].startswith("timm-")]
    assert len(cards) == len(course) + len(expected) and len(course) >= 92
    card = cards["timm-convnext_tiny"]
    assert (card["family"], card["source"], card["input_size"]) == ("convnext", "timm", [3, 224, 224])
    # timm's results table: convnext_tiny.in12k_ft_in1k_384 is its best tag, measured at 384
    assert (card["top1"], card["top5"], card["top1_resolution"], card["pretrain"]) == (85.154, 97.634, 384, "in12k")
    assert "pytorch-image-models commit aa4b585" in card["citation"]


def test_facts_file_matches_installed_timm():
    facts = load_facts()
    assert set(facts) == set(timm.list_models())
    vit = facts["vit_base_patch16_224"]
    assert vit.fixed_input_size and vit.module == "vision_transformer" and "augreg2_in21k_ft_in1k" in vit.tags
    assert facts["resnet50"].tags[:2] == ("a1_in1k", "a1h_in1k")
    assert facts["convnext_tiny"].paper_ids is None or facts["convnext_tiny"].year >= 2020


@pytest.mark.parametrize("arch, course_id", sorted(COURSE_TIMM.items()))
def test_course_models_answer_to_their_timm_name(client, arch, course_id):
    for path in (f"/api/models/timm-{arch}", f"/api/models/timm-{arch}/layers?resolution=299",
                 f"/models/timm-{arch}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == path.replace(f"timm-{arch}", course_id)


def test_timm_model_page_json_and_resolution_rebuild(client):
    body = client.get("/api/models/timm-vit_small_patch16_224").json()
    assert body["totals"]["params"] == 22_050_664 and body["analysed"]
    layers = client.get("/api/models/timm-vit_small_patch16_224/layers?resolution=384").json()
    assert layers["input_shape"] == [1, 3, 384, 384]
    # rebuilt for 384 through timm's img_size: (384/16)^2 + 1 = 577 position embeddings of 384 values
    assert layers["totals"]["params"] == 22_050_664 + (577 - 197) * 384
    assert client.get("/models/timm-vit_small_patch16_224?resolution=384").status_code == 200


def test_reparameterisable_model_shows_both_forms(client):
    body = client.get("/api/models/timm-mobileone_s0").json()
    assert body["totals"]["params"] == 5_293_272  # as trained: the branches
    assert round(body["inference_form"]["params"] / 1e6, 2) == 2.08  # timm's table: the fused form
    assert "re-parameterised for inference" in client.get("/models/timm-mobileone_s0").text
    assert client.get("/api/models/timm-resnet18").json()["inference_form"] is None


def test_catalog_filters_sort_and_pages_on_the_server(client, cards):
    body = client.get("/api/models?family=convnext&sort=name&per_page=5&page=2").json()
    convnexts = [c for c in cards.values() if c["family"].lower() == "convnext"]  # timm's module, torchvision's name
    assert {c["source"] for c in convnexts} == {"timm", "torchvision"}
    assert body["total"] == len(convnexts) and body["page"] == 2 and body["per_page"] == 5
    assert all(c["family"].lower() == "convnext" for c in body["models"]) and len(body["models"]) == 5
    timm_only = client.get("/api/models?source=timm&top1_min=88&sort=top1&order=desc").json()["models"]
    assert timm_only and all(c["source"] == "timm" and c["top1"] >= 88 for c in timm_only)
    assert [c["top1"] for c in timm_only] == sorted((c["top1"] for c in timm_only), reverse=True)
    years = client.get("/api/models?year_min=2015&year_max=2016&source=torchvision").json()["models"]
    assert years and all(2015 <= c["year"] <= 2016 for c in years)
    small = client.get("/api/models?source=torchvision&params_max=3M").json()["models"]
    assert {c["id"] for c in small} == {c["id"] for c in cards.values()
                                         if c["source"] == "torchvision" and c["params"] <= 3e6}
    in21k = client.get("/api/models?pretrain=in21k").json()["models"]
    assert in21k and all(c["pretrain"] == "in21k" for c in in21k)


def test_catalog_sorts_naturally_and_search_forgives(client):
    names = [c["name"] for c in client.get("/api/models?q=resnet&source=torchvision&sort=name").json()["models"]]
    assert names[:5] == ["ResNet-18", "ResNet-34", "ResNet-50", "ResNet-101", "ResNet-152"]
    for text in ("ResNet 50", "resnet-50", "RESNET_50", "resnet50"):
        ids = {c["id"] for c in client.get("/api/models", params={"q": text}).json()["models"]}
        assert "resnet50" in ids, text
    none = client.get("/api/models?q=no+such+network").json()
    assert none["total"] == 0 and none["models"] == []
    page = client.get("/?q=no+such+network")
    assert page.status_code == 200 and "No model matches" in page.text


def test_a_range_filter_says_how_many_it_left_out_for_an_unknown_value(client, cards):
    """A model with no year (most of timm's) is not after 2015, nor before: it is left out, and counted."""
    body = client.get("/api/models?year_min=2015").json()
    no_year = sum(1 for c in cards.values() if c["year"] is None)
    assert no_year > 1000 and body["unknown_left_out"] == no_year
    assert body["total"] == sum(1 for c in cards.values() if c["year"] is not None and c["year"] >= 2015)
    assert client.get("/api/models?source=torchvision&family=ResNet").json()["unknown_left_out"] == 0
    assert f"{no_year:,} more are left out because a range" in client.get("/?year_min=2015").text
    assert "1 more is left out" in client.get("/?family=nin&top1_min=1").text  # NiN: no published top-1


def test_one_family_under_two_spellings_is_one_choice(client, cards):
    """timm's module "convnext" and torchvision's "ConvNeXt" are one family in the filter's choices,
    named as the paper writes it, chosen whichever way the address spells it."""
    both = sum(1 for c in cards.values() if c["family"].lower() == "convnext")
    page = client.get("/?family=convnext")
    families = dict(page.context["families"])
    assert families["ConvNeXt"] == both and "convnext" not in families
    assert page.context["families_chosen"] == {"ConvNeXt"}
    assert f'<option value="ConvNeXt" selected>ConvNeXt ({both})</option>' in page.text
    assert client.get("/api/models?family=CONVNEXT").json()["total"] == both


def test_catalog_page_keeps_its_state_in_the_address(client):
    page = client.get("/?family=ResNet&sort=params&order=desc&selected=vgg16,resnet50")
    context = page.context
    assert [m for m, _ in context["selected"]] == ["vgg16", "resnet50"]
    assert context["compare_url"] == "/compare?models=vgg16,resnet50"
    assert 'value="resnet50" data-name="ResNet-50" aria-label="compare ResNet-50"\n                 checked' in page.text
    assert all("selected=vgg16%2Cresnet50" in link["url"] for link in context["sort_links"])
    assert next(link for link in context["sort_links"] if link["key"] == "params")["aria_sort"] == "descending"


@pytest.mark.parametrize("query", ["params_max=lots", "per_page=0", "year_min=12", "sort=colour"])
def test_catalog_bad_filters_are_clear_errors(client, query):
    response = client.get(f"/api/models?{query}")
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_parameter"


def test_unfiltered_catalog_is_served_from_cached_bytes(client):
    first = client.get("/api/models")
    assert client.get("/api/models").content == first.content


def test_compare_and_chart_accept_timm_ids(client):
    body = client.get("/api/compare?models=timm-resnet18,vgg16,timm-inception_v4").json()
    assert [m["id"] for m in body["models"]] == ["timm-resnet18", "vgg16", "inception_v4"]
    before = client.get("/api/charts/accuracy?family=resnet&pretrain=in1k").json()
    waiting = {m["id"] for m in before["pending"]}  # never a guess: a point waits for its analysis
    assert not waiting & {p["id"] for p in before["points"]}
    at_288 = client.get("/api/models/timm-resnet50?resolution=288").json()  # analysing it puts it on the chart
    chart = client.get("/api/charts/accuracy?family=resnet&pretrain=in1k").json()
    assert chart["filters"] == {"family": ["resnet"], "pretrain": ["in1k"], "source": []}
    assert all(p["family"].lower() == "resnet" and p["pretrain"] == "in1k" for p in chart["points"])
    assert {p["family"] for p in chart["points"]} == {"resnet", "ResNet"}  # timm's module and torchvision's name
    resnet50 = next(p for p in chart["points"] if p["id"] == "timm-resnet50")
    # accuracy and MACs at the same resolution: resnet50.a1_in1k (81.24%) was measured at 288
    assert (resnet50["resolution"], resnet50["top1"]) == (288, 81.24)
    assert resnet50["macs"] == at_288["totals"]["macs"]


def test_cli_summary_of_a_timm_model(capsys, cache_dir, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(cache_dir))
    assert cli_main(["summary", "timm-resnet18", "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["id"] == "timm-resnet18" and body["totals"]["params"] == 11_689_512


def test_catalog_pages_json_twin_is_the_same_page_and_a_page_past_the_last_says_so(client):
    page = client.get("/?sort=macs&order=desc&page=3")
    twin = page.context["json_url"]
    assert "per_page=100" in twin and "page=3" in twin
    assert client.get(twin).json() == page.context["catalog"].model_dump(mode="json")
    assert client.get("/?per_page=50").context["json_url"] == "/api/models?per_page=50"  # once, not twice
    alone = client.get("/api/models?page=3")  # without per_page every match is on page 1
    assert alone.status_code == 422 and "needs per_page" in alone.json()["error"]["message"]
    pages = page.context["pages"]
    beyond = client.get(f"/?page={pages + 10}")
    assert beyond.status_code == 200 and f"there is no page {pages + 10}" in beyond.text
    assert beyond.context["past_last_url"] == f"/?page={pages}" and beyond.context["prev_url"] == f"/?page={pages}"
    assert "showing" not in beyond.text.split('id="catalog-status"')[1].split("</p>")[0]


@pytest.mark.parametrize("model_id", ["timm-convnext_tiny", "timm-resnet50", "timm-repvgg_a2"])
def test_a_model_page_prints_no_missing_paper_or_date(client, model_id):
    """Most timm architectures name no paper in timm's configs, and none has an introduction date."""
    card = client.get(f"/models/{model_id}").text.split('id="card"')[1].split("</section>")[0]
    assert "None" not in card
