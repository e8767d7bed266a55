"""The draw-a-digit canvas on LeNet-5's model page in Chromium: draw a
stroke, get the live top-5 and the feature maps; no console errors and no
request leaves the server."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def trained_lenet5():
    """LeNet-5 trained (seconds) before the page asks, so the first drawing waits for no training."""
    from models.weights import lenet5_training

    return lenet5_training(train=True)


def test_draw_a_one_and_read_it(page, live_server):
    p = page.page
    p.goto(f"{live_server}/models/lenet5")
    canvas = p.locator("#digit-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x = box["x"] + box["width"] / 2
    p.mouse.move(x, box["y"] + 30)
    p.mouse.down()
    for step in range(1, 17):
        p.mouse.move(x, box["y"] + 30 + step * 10)
    p.mouse.up()
    p.locator("#digit-top5 li").nth(4).wait_for()
    assert p.locator("#digit-top5 li").count() == 5
    assert p.locator("#digit-pad").get_attribute("data-top1") == "1"
    p.locator("#digit-map-caption", has_text="6 channels of 28×28").wait_for()
    p.wait_for_function("document.getElementById('digit-maps').naturalWidth > 0")

    p.select_option("#digit-layer", "features.3")
    p.locator("#digit-map-caption", has_text="16 channels of 10×10").wait_for()
    page.screenshot("digit-canvas")
    p.click("#digit-clear")
    assert p.locator("#digit-top5 li").count() == 0 and p.locator("#digit-pad").get_attribute("data-top1") is None
    page.assert_clean()
