"""The pages in Debian's Chromium: they load clean and offline, the catalog
filters and sorts, the layer table folds, the resolution control re-analyses,
compare adds and removes models, and the charts hold one point per model with
a known accuracy and open a model on click. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import analyse_course_models

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def cards(app, live_server) -> list[dict]:
    analyse_course_models(app)  # the course's models counted once; timm's zoo is listed as it is analysed
    return httpx.get(f"{live_server}/api/models", timeout=300).json()["models"]


def _figures_ready(page, *names: str) -> None:
    for name in names:
        page.wait_for_selector(f"#fig-{name}[data-ready='1']", timeout=20_000)


def _visible_ids(page) -> list[str]:
    return page.eval_on_selector_all("#catalog tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.id)")


def test_catalog_filters_and_sorts(page, live_server, cards):
    """The server filters, sorts and pages; the address keeps what was asked."""
    p = page.page
    p.goto(f"{live_server}/")
    assert len(_visible_ids(p)) == 100 and p.inner_text("#catalog-count") == str(len(cards))
    page.screenshot("catalog")

    p.fill("#catalog-search", "VGG 16")
    p.press("#catalog-search", "Enter")
    p.wait_for_url(re.compile(r"q=VGG"))
    assert set(_visible_ids(p)) >= {"vgg16", "vgg16_bn"} and all("vgg16" in i for i in _visible_ids(p))
    p.fill("#catalog-search", "")
    p.press("#catalog-search", "Enter")
    p.wait_for_url(lambda url: "q=" not in url)

    p.select_option("#filter-family", "MobileNet")  # applies at once
    p.wait_for_url(re.compile(r"family=MobileNet"))
    assert sorted(_visible_ids(p)) == sorted(c["id"] for c in cards if c["family"] == "MobileNet")

    p.click("a.sort[data-sort='params']")  # ascending
    p.wait_for_url(re.compile(r"sort=params"))
    params = {c["id"]: c["params"] for c in cards}
    order = [params[i] for i in _visible_ids(p)]
    assert order == sorted(order)
    assert p.get_attribute("th:has(a.sort[data-sort='params'])", "aria-sort") == "ascending"
    p.click("a.sort[data-sort='params']")  # descending
    p.wait_for_url(re.compile(r"order=desc"))
    order = [params[i] for i in _visible_ids(p)]
    assert order == sorted(order, reverse=True) and "family=MobileNet" in p.url

    p.goto(f"{live_server}/?q=no+such+network")
    assert "No model matches" in p.inner_text("#no-match")
    page.assert_clean()


def test_filter_to_a_timm_family_and_open_a_model(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/?source=timm")
    p.select_option("#filter-family", "ConvNeXt")  # timm's module "convnext" and torchvision's ConvNeXt: one choice
    p.wait_for_url(re.compile(r"family=ConvNeXt"))
    ids = _visible_ids(p)
    expected = {c["id"] for c in cards if c["family"] == "convnext" and c["source"] == "timm"}
    assert set(ids) == expected and len(ids) == int(p.inner_text("#catalog-count"))
    # not analysed yet: said so, never a blank or a wait
    assert p.locator("#catalog tr[data-id='timm-convnext_tiny'] td.not-analysed").count() in (0, 1)
    p.click("#catalog a[href='/models/timm-convnext_tiny']")
    p.wait_for_url(re.compile(r"/models/timm-convnext_tiny$"))
    _figures_ready(p, "costs", "architecture")
    body = httpx.get(f"{live_server}/api/models/timm-convnext_tiny").json()
    assert p.inner_text("[data-total='macs']") == f"{body['totals']['macs']:,}"
    assert "in12k_ft_in1k_384" in p.inner_text("#timm-facts")
    page.screenshot("model-timm-convnext_tiny")
    page.assert_clean()


def test_newcomer_finds_vgg16_and_compares_in_three_clicks(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/")
    p.click("#catalog a[href='/models/vgg16']")  # 1
    p.wait_for_url(re.compile(r"/models/vgg16$"))
    _figures_ready(p, "costs", "architecture")
    text = p.inner_text("#where")
    assert "classifier.0" in text and "102,764,544" in text  # FC6: 7*7*512*4096 weights + 4096 biases
    assert "features.0" in text  # the first conv: the largest activation map, 64×224×224
    page.screenshot("model-vgg16")
    p.click("#compare-with a.button")  # 2
    p.wait_for_url(re.compile(r"/compare\?models=vgg16,googlenet,mobilenet_v2$"))
    _figures_ready(p, "profile", "stages")
    assert p.eval_on_selector_all("#chosen li", "els => els.map(e => e.dataset.id)") == [
        "vgg16", "googlenet", "mobilenet_v2"]
    page.assert_clean()


def test_catalog_ticks_models_to_compare_and_back_keeps_them(page, live_server, cards):
    """Ticks live in the address: across searches, and after Back the boxes
    shown ticked are the ones the compare button uses (issue 17)."""
    p = page.page
    p.goto(f"{live_server}/?q=vgg16")
    assert not p.locator("#compare-selected").is_visible()
    p.check("#catalog input.pick[value='vgg16']")
    for query, model_id in (("googlenet", "googlenet"), ("mobilenet v2", "mobilenet_v2")):
        p.fill("#catalog-search", query)
        p.press("#catalog-search", "Enter")
        p.wait_for_url(re.compile("q=" + query.split()[0]))
        p.check(f"#catalog input.pick[value='{model_id}']")
    assert p.get_attribute("#compare-selected", "href") == "/compare?models=vgg16,googlenet,mobilenet_v2"
    p.click("#compare-selected")
    p.wait_for_url(re.compile(r"/compare\?models=vgg16,googlenet,mobilenet_v2$"))
    p.go_back()
    p.wait_for_url(re.compile(r"selected="))
    assert p.is_checked("#catalog input.pick[value='mobilenet_v2']")
    assert p.get_attribute("#compare-selected", "href") == "/compare?models=vgg16,googlenet,mobilenet_v2"
    p.uncheck("#catalog input.pick[value='mobilenet_v2']")
    assert p.get_attribute("#compare-selected", "href") == "/compare?models=vgg16,googlenet"
    p.click("#compare-selected")
    p.wait_for_url(re.compile(r"/compare\?models=vgg16,googlenet$"))
    page.assert_clean()


def test_formulas_shown_for_alexnet_paper_conv1(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/models/alexnet_paper")
    row = p.locator("#layer-table tr[data-path='features.0']")
    assert "(227 − 11 + 2·0)/4 + 1 = 55" in row.inner_text()
    assert "(11·11·3 + 1)·96 = 34,944" in row.inner_text()
    assert "55·55·11·11·3·96 = 105,415,200" in row.inner_text()
    page.assert_clean()


def test_layer_table_block_expands(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/models/resnet50")
    block = p.locator("#layer-table tr[data-path='layer1.0']")
    child = p.locator("#layer-table tr[data-path='layer1.0.conv1']")
    assert block.is_visible() and not child.is_visible()
    block.locator("button.toggle").click()
    assert child.is_visible()
    assert block.locator("button.toggle").get_attribute("aria-expanded") == "true"
    block.locator("button.toggle").click()
    assert not child.is_visible()
    p.click("#expand-all")
    assert p.locator("#layer-table tr[data-path='layer4.2.bn3']").is_visible()
    p.click("#collapse-all")
    assert not block.is_visible()  # layer1 (a Sequential) closed too
    page.assert_clean()


def test_googlenet_inception_module_folds(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/models/googlenet")
    _figures_ready(p, "costs", "architecture")
    module = p.locator("#layer-table tr[data-path='inception3a']")
    assert module.is_visible() and not p.locator("#layer-table tr[data-path='inception3a.branch1']").is_visible()
    module.locator("button.toggle").click()
    assert p.locator("#layer-table tr[data-path='inception3a.branch4']").is_visible()
    page.screenshot("model-googlenet")
    page.assert_clean()


def test_resolution_control_changes_numbers(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/models/vgg16")
    before = p.inner_text("[data-total='macs']")
    assert before == f"{next(c for c in cards if c['id'] == 'vgg16')['macs']:,}"
    p.fill("#resolution", "160")
    p.click("form.resolution button[type='submit']")
    p.wait_for_url(re.compile(r"resolution=160"))
    expected = httpx.get(f"{live_server}/api/models/vgg16?resolution=160").json()["totals"]
    assert p.inner_text("[data-total='macs']") == f"{expected['macs']:,}" != before
    assert p.locator("#layer-table tr[data-path='features.0'] td.shape").inner_text() == "64×160×160"
    page.assert_clean()


def test_compare_adds_and_removes_a_model(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/compare?models=vgg16,googlenet")
    _figures_ready(p, "profile", "stages")
    p.select_option("#compare-add-select", "mobilenet_v2")
    p.click("#compare-add button[type='submit']")
    p.wait_for_url(re.compile(r"models=vgg16,googlenet,mobilenet_v2$"))
    _figures_ready(p, "profile", "stages")
    assert p.locator("#chosen li").count() == 3
    # one line per model in each of the two profile panels
    assert p.evaluate("document.getElementById('fig-profile').data.length") == 6
    page.screenshot("compare")
    p.click("#chosen li[data-id='googlenet'] a.remove")
    p.wait_for_url(re.compile(r"models=vgg16,mobilenet_v2$"))
    assert p.eval_on_selector_all("#chosen li", "els => els.map(e => e.dataset.id)") == ["vgg16", "mobilenet_v2"]
    page.assert_clean()


def _chart_ids(p) -> list[str]:
    return p.evaluate("""document.getElementById('fig-accuracy').data
        .filter(t => t.meta === 'models').flatMap(t => t.customdata.map(c => c[0]))""")


def test_accuracy_chart_draws_every_point_with_webgl_and_filters(page, live_server, cards):
    chart = httpx.get(f"{live_server}/api/charts/accuracy").json()
    p = page.page
    p.goto(f"{live_server}/charts/accuracy")
    _figures_ready(p, "accuracy", "density", "ilsvrc")
    assert sorted(_chart_ids(p)) == sorted(pt["id"] for pt in chart["points"])
    assert p.evaluate("""document.getElementById('fig-accuracy').data
        .filter(t => t.meta === 'models').every(t => t.type === 'scattergl')""")
    assert p.locator("#fig-accuracy canvas").count() >= 1  # drawn by WebGL
    assert p.locator("#fig-density .barlayer path").count() == min(40, len(chart["points"]))
    for card in (c for c in cards if c["top1"] is None and not c["id"].startswith("timm-")):  # listed, not dropped
        assert p.locator(f"#without-accuracy a[href='/models/{card['id']}']").count() == 1
    page.screenshot("charts-accuracy")

    p.select_option("#chart-family", "ResNet")  # applies at once; the Pareto front is over what is shown
    p.wait_for_url(re.compile(r"family=ResNet"))
    _figures_ready(p, "accuracy")
    shown = httpx.get(f"{live_server}/api/charts/accuracy?family=ResNet").json()["points"]
    assert sorted(_chart_ids(p)) == sorted(pt["id"] for pt in shown) and shown
    front = p.evaluate("document.getElementById('fig-accuracy').data.find(t => t.meta === 'pareto').x")
    assert front == sorted(pt["macs"] for pt in shown if pt["pareto"])
    page.assert_clean()


def test_click_on_chart_point_opens_the_model(page, live_server, cards):
    target = max((c for c in cards if c["top1"] is not None and c["macs"]), key=lambda c: c["macs"])
    p = page.page
    p.goto(f"{live_server}/charts/accuracy?family={target['family']}")
    _figures_ready(p, "accuracy")
    box = p.evaluate("""(id) => {
        const gd = document.getElementById('fig-accuracy');
        const full = gd._fullLayout, rect = gd.querySelector('.nsewdrag').getBoundingClientRect();
        for (const t of gd.data) {
          const j = (t.customdata || []).findIndex(c => c[0] === id);
          if (j >= 0) return {x: rect.left + full.xaxis.l2p(Math.log10(t.x[j])),
                              y: rect.top + full.yaxis.l2p(t.y[j])};
        }
        return null;
      }""", target["id"])
    assert box is not None
    p.mouse.move(box["x"], box["y"])
    p.mouse.click(box["x"], box["y"])
    p.wait_for_url(re.compile(rf"/models/{target['id']}$"))
    page.assert_clean()


def test_unknown_model_is_a_404_page(page, live_server):
    page.expect_console_error("404")
    response = page.page.goto(f"{live_server}/models/no_such_net")
    assert response.status == 404
    assert "no_such_net" in page.page.inner_text(".error-message")
    page.screenshot("error-404")
    page.assert_clean()


def test_bad_query_value_is_a_clear_message(page, live_server):
    page.expect_console_error("422")
    response = page.page.goto(f"{live_server}/models/vgg16?resolution=abc")
    assert response.status == 422
    assert "resolution" in page.page.inner_text(".error-message")
    assert "Traceback" not in page.page.content()
    page.assert_clean()


@pytest.mark.parametrize("name, path", [
    ("catalog", "/"), ("model-vgg16", "/models/vgg16"), ("compare", "/compare?models=vgg16,googlenet,mobilenet_v2"),
    ("charts-accuracy", "/charts/accuracy"),
])
def test_pages_fit_a_phone(page, live_server, cards, name, path):
    p = page.page
    p.set_viewport_size(PHONE)
    p.goto(f"{live_server}{path}")
    p.wait_for_load_state("networkidle")
    assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.screenshot(f"phone-{name}")
    page.assert_clean()


def test_api_docs_load_offline(page, live_server):
    """Swagger UI from the swagger-ui-bundle package, not a CDN."""
    page.page.goto(f"{live_server}/docs")
    page.page.wait_for_selector(".opblock-tag", timeout=20_000)
    assert page.page.locator(".opblock").count() >= 10
    page.screenshot("docs")
    page.assert_clean()
