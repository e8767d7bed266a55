"""Results never sit beside input they weren't computed from, a refused value stays on
its page with the form, chart controls keep clear of legends, and what Back restores is
what the page acts on (issue 17), in Chromium."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def warm(live_server) -> str:
    assert httpx.get(f"{live_server}/api/models", timeout=600).status_code == 200
    return live_server


def test_failed_upload_clears_the_previous_result(page, warm, photos, tmp_path):
    p = page.page
    p.goto(f"{warm}/predict")
    p.set_input_files("#file-input", str(photos["chelsea"]))
    p.locator("#chart-main[data-top1]").wait_for()
    assert "ms" in p.inner_text("#timing")
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    p.set_input_files("#file-input", str(bad))
    p.locator("#status.error").wait_for()
    assert p.get_attribute("#chart-main", "data-top1") is None  # the cat's top-5 is gone
    assert p.locator("#chart-main .bars .point").count() == 0
    assert p.inner_text("#timing") == ""
    page.expect_console_error("status of 415")
    page.assert_clean()


def test_oversize_photo_error_reads_like_the_page(page, warm, tmp_path):
    p = page.page
    p.goto(f"{warm}/predict")
    limit = p.inner_text("#upload-limits")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (20 * 1024 * 1024 + 1))
    p.set_input_files("#file-input", str(big))
    p.locator("#status.error").wait_for()
    message = p.inner_text("#status")
    phrase = re.search(r"[\d.]+ MB \(20,971,520 bytes\)", limit).group()
    assert phrase in message
    assert p.get_attribute("#chart-main", "data-top1") is None
    page.expect_console_error("status of 413")
    page.assert_clean()


def test_resolution_a_model_cannot_take(page, warm):
    p = page.page
    p.goto(f"{warm}/models/vgg16")
    box = p.locator("#resolution")
    assert box.get_attribute("min") == "32"
    box.fill("31")
    assert box.evaluate("b => !b.checkValidity() && b.validationMessage.length > 0")  # said before submitting
    p.keyboard.press("Enter")
    assert p.url.endswith("/models/vgg16")  # the browser held the form back
    page.expect_console_error("422")
    response = p.goto(f"{warm}/models/vgg16?resolution=31")
    assert response.status == 422
    assert p.input_value("#resolution") == "31"
    assert "32×32" in p.inner_text("#resolution-error")
    assert p.locator("#layer-table tbody tr").count() > 30  # still the model page, at 224
    page.assert_clean()


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1280, "height": 900}])
def test_compare_chart_controls_clear_of_legends(page, warm, viewport):
    p = page.page
    p.set_viewport_size(viewport)
    p.goto(f"{warm}/compare?models=vgg16,googlenet,mobilenet_v2,resnet50")
    for name in ("profile", "stages"):
        p.wait_for_selector(f"#fig-{name}[data-ready='1']", timeout=20_000)
        ticks = p.eval_on_selector_all(f"#fig-{name} .ytick text", "els => els.map(e => e.textContent)")
        assert any(t.endswith("G") for t in ticks) and not any(t.endswith("B") for t in ticks), ticks  # 15G, as the text says
        p.hover(f"#fig-{name} .nsewdrag", position={"x": 5, "y": 5})  # shows the modebar
        boxes = p.evaluate(f"""() => {{
            const fig = document.getElementById('fig-{name}');
            const box = (sel) => [...fig.querySelectorAll(sel)].map(e => e.getBoundingClientRect())
                .filter(r => r.width > 0).map(r => [r.left, r.top, r.right, r.bottom]);
            return {{legend: box('.legend .bg'), controls: box('.updatemenu-container .updatemenu-button')
                    .concat(box('.modebar'))}};
        }}""")
        assert boxes["legend"] and boxes["controls"], boxes
        for legend in boxes["legend"]:
            for control in boxes["controls"]:
                apart = (legend[2] <= control[0] or control[2] <= legend[0] or
                         legend[3] <= control[1] or control[3] <= legend[1])
                assert apart, (name, legend, control)
    page.assert_clean()


def test_back_restores_what_the_speed_page_shows(page, warm):
    p = page.page
    p.goto(f"{warm}/speed")
    p.select_option(".speed-variant select[name=dtype]", "bfloat16")  # changed, never submitted
    p.goto(f"{warm}/lab")
    p.go_back()
    p.wait_for_load_state("load")
    assert p.input_value(".speed-variant select[name=dtype]") == "float32"  # what the page's numbers are
    page.assert_clean()


def test_sorted_header_says_so(page, warm):
    p = page.page
    p.goto(f"{warm}/")
    header = p.locator("th:has(a.sort[data-sort='params'])")
    p.click("a.sort[data-sort='params']")   # sorted on the server: the page comes back sorted, and says so
    p.wait_for_url("**sort=params**")
    first = header.get_attribute("aria-sort")
    assert first in ("ascending", "descending")
    p.click("a.sort[data-sort='params']")
    expect(header).to_have_attribute("aria-sort", "descending" if first == "ascending" else "ascending")
    assert p.locator("th[aria-sort]").count() == 1
    page.assert_clean()


def test_lab_summaries_say_what_happened(page, warm):
    """'The reductions cut ...' only when they do; the last feature map is ResNet-50's layer4."""
    from playwright.sync_api import expect
    p = page.page
    p.goto(f"{warm}/lab")
    summary = p.locator("#bottleneck [data-slot=summary]")
    expect(summary).to_contain_text("cut weights")
    form = p.locator("#bottleneck form")
    form.locator("input[name=channels]").fill("8")   # 1x1 "reductions" that widen 8 channels to 512
    form.locator("input[name=c3r]").fill("512")
    expect(summary).to_contain_text("raise weights")
    expect(summary).not_to_contain_text("cut weights")
    growth = p.locator("#receptive-growth")
    growth.locator("select[name=model]").select_option("resnet50")
    expect(growth.locator("[data-slot=summary]")).to_contain_text("last feature map (layer4")
    expect(growth.locator("[data-slot=summary]")).to_contain_text("427 x 427")
    expect(growth.locator("[data-slot=summary]")).to_contain_text("whole 224 x 224 input")
    order = growth.locator("select[name=model] option").all_inner_texts()
    resnets = [int(t.split("-")[1]) for t in order if re.fullmatch(r"ResNet-\d+", t.strip())]
    assert resnets == [18, 34, 50, 101, 152]
    page.assert_clean()
