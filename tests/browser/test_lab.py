"""The lab page in Chromium: numbers update when inputs change, presets
reproduce the course's figures, a bad value is explained in words, and the page
makes no console errors and no request outside the app."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def _open(page, live_server):
    page.page.goto(f"{live_server}/lab")
    expect(page.page.locator("#bottleneck [data-field=naive-macs]")).to_have_text(re.compile(r"\d"))
    return page.page


def _field(p, section: str, name: str):
    return p.locator(f"#{section} [data-field='{name}']")


def test_initial_render_and_screenshot(page, live_server):
    p = _open(page, live_server)
    # GoogLeNet inception (3a): 28x28x192 -> 64, 96/128, 16/32, 32
    expect(_field(p, "bottleneck", "reduced-channels")).to_have_text("192 → 256")
    expect(_field(p, "bottleneck", "naive-channels")).to_have_text("192 → 416")
    expect(p.locator("#bottleneck .lab-chart .main-svg").first).to_be_visible()
    expect(p.locator("#mobilenet .lab-chart .main-svg").first).to_be_visible()
    expect(_field(p, "mobilenet", "params-1.0")).to_have_text("4,231,976")
    expect(_field(p, "receptive-field", "stack-rf")).to_have_text("7 x 7")
    expect(p.locator("#output-size [data-slot=output]")).to_have_text("55")
    page.screenshot("lab")
    page.assert_clean()


def test_preset_reproduces_curriculum_figures(page, live_server):
    p = _open(page, live_server)
    p.get_by_role("button", name="480 -> 48 5x5 on 14x14, 16-filter reduction").click()
    expect(_field(p, "bottleneck", "naive-weights")).to_have_text("576,000")
    expect(_field(p, "bottleneck", "reduced-weights")).to_have_text("26,880")
    expect(_field(p, "bottleneck", "naive-macs")).to_have_text("112,896,000")
    expect(_field(p, "bottleneck", "reduced-macs")).to_have_text("5,268,480")
    p.get_by_role("button", name="192 -> 32 5x5 on 28x28, 16-filter reduction").click()
    expect(_field(p, "bottleneck", "naive-macs")).to_have_text("120,422,400")
    expect(_field(p, "bottleneck", "reduced-macs")).to_have_text("12,443,648")
    p.locator("#output-size").get_by_role("button", name="ceil_mode's rule").click()
    expect(p.locator("#output-size [data-slot=output]")).to_have_text("3")
    expect(p.locator("#output-size [data-slot=steps]")).to_contain_text("wholly in the right padding")
    page.assert_clean()


def test_changing_inputs_updates_numbers(page, live_server):
    p = _open(page, live_server)
    stack = p.locator("#receptive-field")
    stack.locator("input[name=layers]").fill("2")
    expect(_field(p, "receptive-field", "stack-rf")).to_have_text("5 x 5")
    stack.locator("input[name=channels]").fill("10")
    expect(_field(p, "receptive-field", "stack-weights")).to_have_text("1,800")   # 2 * 3*3*10*10
    expect(_field(p, "receptive-field", "single-weights")).to_have_text("2,500")  # 5*5*10*10
    separable = p.locator("#separable")
    separable.locator("input[name=in_channels]").fill("32")
    separable.locator("input[name=out_channels]").fill("64")
    expect(_field(p, "separable", "standard-weights")).to_have_text("18,432")   # 32*3*3*64
    expect(_field(p, "separable", "separable-weights")).to_have_text("2,336")   # 32*(9 + 64)
    growth = p.locator("#receptive-growth")
    expect(_field(p, "receptive-growth", "rf-features.4")).to_have_text("6")   # VGG-16's pool1
    growth.locator("select[name=model]").select_option(label="ResNet-50")  # torchvision's, not timm-resnet50
    expect(growth.locator("[data-slot=summary]")).to_contain_text("ResNet-50")
    expect(_field(p, "receptive-growth", "rf-layer4.2.conv2")).to_have_text("427")
    bottleneck = p.locator("#bottleneck")
    bottleneck.locator("input[name=c5r]").fill("0")
    expect(_field(p, "bottleneck", "reduced-weights")).not_to_have_text("")
    page.assert_clean()


def test_bad_value_is_explained(page, live_server):
    p = _open(page, live_server)
    section = p.locator("#bottleneck")
    section.locator("input[name=channels]").fill("-3")
    error = section.locator(".lab-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("channels")
    expect(error).to_contain_text("greater than or equal to 1")
    section.locator("input[name=channels]").fill("192")
    expect(error).to_be_hidden()
    factorised = p.locator("#factorised")
    factorised.locator("input[name=n]").fill("4")
    expect(factorised.locator(".lab-error")).to_contain_text("n must be odd")
    output = p.locator("#output-size")
    output.locator("input[name=kernel]").fill("300")
    expect(output.locator(".lab-error")).to_contain_text("nowhere to put it")
    # Chromium logs each refused request ("... status of 422"); anything else is a page error.
    assert [e for e in page.console_errors if "status of 422" not in e] == []
    assert page.foreign_requests == []


def test_lectures_numbers_page_and_where_they_show(page, live_server):
    """/lab/numbers lists every checked figure with its verdict; the lab's inception calculator and the model
    pages the figures concern show the verdict beside the computed number; a row link opens its folded row."""
    p = page.page
    p.goto(f"{live_server}/lab/numbers")
    row = p.locator("#cs231n-inception-reduced")
    expect(row.locator("[data-field=computed]")).to_contain_text("271,351,808")
    expect(row.locator(".verdict")).to_have_text("wrong")
    expect(p.locator("#fgv-alexnet-params .verdict")).to_have_text("other variant")
    page.screenshot("lab-numbers")
    row.get_by_role("link", name="lab: the inception module").click()   # opens the calculator on that module
    expect(p.locator("#bottleneck input[name=channels]")).to_have_value("256")
    expect(p.locator("#bottleneck [data-slot=claims] [data-claim=cs231n-inception-reduced] .verdict")).to_have_text(
        "wrong")

    p = _open(page, live_server)
    p.get_by_role("button", name="CS231n-style module on 28x28x256, 64-filter reductions").click()
    claims = p.locator("#bottleneck [data-slot=claims]")
    expect(claims.locator("[data-claim=cs231n-inception-naive] .verdict")).to_have_text("rounded")
    expect(claims.locator("[data-claim=cs231n-inception-reduced]")).to_contain_text("271,351,808")
    p.locator("#bottleneck input[name=c1]").fill("127")   # another module: the lecture's verdicts go
    expect(claims).to_be_hidden()

    p.goto(f"{live_server}/models/alexnet_paper")
    lecture = p.locator("#lecture-figures")
    expect(lecture.locator("[data-claim=fgv-alexnet-params] .verdict")).to_have_text("other variant")
    expect(lecture.locator("[data-claim=cs231n-alexnet-conv1]")).to_contain_text("34,944")
    p.goto(f"{live_server}/models/vgg16#layer-classifier.0")
    expect(p.locator("#layer-table tr.target")).to_have_attribute("data-path", "classifier.0")
    expect(p.locator("#layer-table tr.target")).to_be_visible()
    expect(p.locator("#lecture-figures")).to_contain_text("44 figures")
    page.assert_clean()
