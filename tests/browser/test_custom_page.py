"""The /custom page in Chromium: the Sequential table follows the text as it
is typed, a mistake is explained in words, and an ONNX file dropped on the
page leads to its model page; no console errors, no request off the app."""

from __future__ import annotations

import base64
import re

from playwright.sync_api import expect
from torch import nn

from tests.onnx_exports import export


def test_sequential_table_follows_the_text(page, live_server):
    p = page.page
    p.goto(f"{live_server}/custom")
    rows = p.locator("#seq-table tbody tr")
    expect(rows).to_have_count(12)  # the LeNet-5 preset, analysed on load
    expect(p.locator("#seq-totals")).to_contain_text("61,706 parameters")
    page.expect_console_error("status of 400")
    code = p.locator("#seq-code")
    code.fill("nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(100, 10))")
    expect(p.locator("#seq-status")).to_contain_text("expects 100 features and the layer before gives 6x14x14 = 1,176")
    code.press("End")
    for _ in range(len("100, 10))")):
        code.press("Backspace")
    code.type("1176, 10))", delay=20)
    expect(p.locator("#seq-status")).to_have_text("")
    expect(rows).to_have_count(5)
    expect(rows.nth(4)).to_contain_text("11,770")  # 1176 * 10 + 10 parameters
    p.locator("button.preset", has_text="AlexNet CONV1").click()
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("105,415,200")
    page.screenshot("custom-sequential")
    page.assert_clean()


def test_dropping_an_onnx_file_opens_its_model_page(page, live_server):
    data = export(nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                nn.Linear(16, 10)), (3, 64, 64))
    p = page.page
    p.goto(f"{live_server}/custom")
    p.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "mine.onnx"));
        document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer}));
    }""", base64.b64encode(data).decode())
    p.wait_for_url(re.compile(r"/models/onnx-[0-9a-f]{16}$"))
    expect(p.locator("h1")).to_contain_text("ONNX")
    expect(p.locator("#layer-table")).to_contain_text("Conv2d")
    page.assert_clean()
