"""The pages in Debian's Chromium: they load clean and offline, the catalog
filters and sorts, the layer table folds, the resolution control re-analyses,
compare adds and removes models, and the charts hold one point per model with
a known accuracy and open a model on click. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re

import httpx
import pytest

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def cards(live_server) -> list[dict]:
    # Also warms the analysis cache for the whole catalog once.
    return httpx.get(f"{live_server}/api/models", timeout=300).json()["models"]


def _figures_ready(page, *names: str) -> None:
    for name in names:
        page.wait_for_selector(f"#fig-{name}[data-ready='1']", timeout=20_000)


def _visible_ids(page) -> list[str]:
    return page.eval_on_selector_all("#catalog tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.id)")


def test_catalog_filters_and_sorts(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/")
    assert len(_visible_ids(p)) == len(cards) == 94
    page.screenshot("catalog")

    p.fill("#catalog-search", "vgg")
    vggs = _visible_ids(p)
    assert sorted(vggs) == sorted(c["id"] for c in cards if "vgg" in c["id"])
    assert p.inner_text("#catalog-count") == str(len(vggs))
    p.fill("#catalog-search", "")

    p.click("#family-chips .chip[data-family='MobileNet']")
    assert sorted(_visible_ids(p)) == sorted(c["id"] for c in cards if c["family"] == "MobileNet")
    p.click("#family-chips .chip[data-family='']")
    assert len(_visible_ids(p)) == len(cards)

    p.click("button.sort[data-col='4']")  # params, ascending
    params = {c["id"]: c["params"] for c in cards}
    order = [params[i] for i in _visible_ids(p)]
    assert order == sorted(order) and order[0] == min(params.values())
    p.click("button.sort[data-col='4']")  # descending
    order = [params[i] for i in _visible_ids(p)]
    assert order == sorted(order, reverse=True)

    p.click("button.sort[data-col='6']")  # top-1 ascending: unknown accuracies last
    last = _visible_ids(p)[-1]
    assert next(c for c in cards if c["id"] == last)["top1"] is None
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


def test_catalog_ticks_models_to_compare(page, live_server, cards):
    p = page.page
    p.goto(f"{live_server}/")
    assert not p.locator("#compare-selected").is_visible()
    for model_id in ("vgg16", "googlenet", "mobilenet_v2"):
        p.check(f"#catalog input.pick[value='{model_id}']")
    p.click("#compare-selected")
    p.wait_for_url(re.compile(r"/compare\?models=vgg16,googlenet,mobilenet_v2$"))
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


def test_accuracy_charts_hold_one_point_per_known_model(page, live_server, cards):
    known = [c for c in cards if c["top1"] is not None]
    unknown = [c for c in cards if c["top1"] is None]
    p = page.page
    p.goto(f"{live_server}/charts/accuracy")
    _figures_ready(p, "accuracy", "density", "ilsvrc")
    assert p.locator("#fig-accuracy .scatterlayer path.point").count() == len(known)
    ids = p.evaluate("""document.getElementById('fig-accuracy').data
        .filter(t => t.meta === 'models').flatMap(t => t.customdata.map(c => c[0]))""")
    assert sorted(ids) == sorted(c["id"] for c in known)
    assert p.locator("#fig-density .barlayer path").count() == len(known)
    for card in unknown:  # listed, not dropped
        assert p.locator(f"#without-accuracy a[href='/models/{card['id']}']").count() == 1
    page.screenshot("charts-accuracy")
    page.assert_clean()


def test_click_on_chart_point_opens_the_model(page, live_server, cards):
    target = max((c for c in cards if c["top1"] is not None), key=lambda c: c["macs"])
    p = page.page
    p.goto(f"{live_server}/charts/accuracy")
    _figures_ready(p, "accuracy")
    box = p.evaluate("""(id) => {
        const gd = document.getElementById('fig-accuracy');
        const traces = gd.querySelectorAll('.scatterlayer .trace');
        for (let i = 0; i < gd.data.length; i++) {
          const j = (gd.data[i].customdata || []).findIndex(c => c[0] === id);
          if (j >= 0) {
            const r = traces[i].querySelectorAll('path.point')[j].getBoundingClientRect();
            return {x: r.x + r.width / 2, y: r.y + r.height / 2};
          }
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
