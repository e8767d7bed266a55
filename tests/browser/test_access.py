"""Every page for a keyboard, a screen reader and a phone (issue 17): axe-core
finds no serious or critical violation, a skip link leads to the content, each
page fits a 390 px screen with wide tables scrolling in their own box and
charts no wider than their container, and a keyboard alone uploads a photo on
/predict. axe-core comes bundled in the PyPI package axe-playwright-python."""

from __future__ import annotations

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import TimeoutError as PlaywrightTimeout

PHONE = {"width": 390, "height": 844}

# Every page of the app (the error page and /docs too), opened as a newcomer would.
PAGES = {
    "catalog": "/",
    "model": "/models/resnet50",
    "model-vit": "/models/vit_b_16?resolution=160",
    "compare": "/compare?models=vgg16,googlenet,mobilenet_v2",
    "charts": "/charts/accuracy",
    "speed": "/speed",
    "predict": "/predict",
    "lab": "/lab",
    "lab-numbers": "/lab/numbers",
    "custom": "/custom",
    "inside": "/models/efficientnet_lite0/inside",
    "model-lenet5": "/models/lenet5",  # with its draw-a-digit canvas
    "not-found": "/models/ResNet50",
    "docs": "/docs",
}


@pytest.fixture(scope="module")
def warm(live_server) -> str:
    # The catalog answers without analysing (models are analysed as they are opened).
    assert httpx.get(f"{live_server}/api/models", timeout=600).status_code == 200
    # /lab fetches the lectures' numbers as it loads: computed once here, not inside a page's wait
    assert httpx.get(f"{live_server}/api/lab/numbers", timeout=600).status_code == 200
    return live_server


def _open(page, base: str, path: str) -> None:
    if path.startswith("/models/ResNet"):
        page.expect_console_error("404")
    page.page.goto(f"{base}{path}")
    try:  # /lab never reads as network-idle in Chromium (on main too): settle for load plus a few seconds
        page.page.wait_for_load_state("networkidle", timeout=8_000)
    except PlaywrightTimeout:
        page.page.wait_for_load_state("load")


@pytest.fixture(scope="module")
def axe() -> Axe:
    return Axe()


@pytest.mark.parametrize("name", PAGES)
def test_no_serious_accessibility_violations(page, warm, axe, name):
    _open(page, warm, PAGES[name])
    results = axe.run(page.page)
    serious = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    page.assert_clean()


@pytest.mark.parametrize("name", [n for n in PAGES if n != "docs"])
def test_skip_link_leads_to_the_content(page, warm, name):
    _open(page, warm, PAGES[name])
    p = page.page
    p.keyboard.press("Tab")
    focused = p.evaluate("[document.activeElement.textContent.trim(), document.activeElement.getAttribute('href')]")
    assert focused == ["Skip to content", "#content"]
    p.keyboard.press("Enter")
    assert p.evaluate("document.activeElement.id") == "content"
    page.assert_clean()


@pytest.mark.parametrize("name", PAGES)
def test_page_fits_a_phone(page, warm, name):
    """No sideways scrolling of the page at 390 px; what is wider scrolls inside its own box."""
    p = page.page
    p.set_viewport_size(PHONE)
    _open(page, warm, PAGES[name])
    assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    overflowing = p.evaluate("""() => [...document.querySelectorAll('table, .js-plotly-plot, svg.main-svg, img, canvas')]
        .filter(el => el.getClientRects().length)
        .filter(el => {
          const r = el.getBoundingClientRect();
          if (r.right <= innerWidth + 1 && r.left >= -1) return false;
          // wider than the screen: fine only inside a box that scrolls sideways
          for (let a = el.parentElement; a; a = a.parentElement) {
            const s = getComputedStyle(a).overflowX;
            if ((s === 'auto' || s === 'scroll') && a.getBoundingClientRect().right <= innerWidth + 1) return false;
          }
          return true;
        }).map(el => el.id || el.className.baseVal || el.className || el.tagName)""")
    assert overflowing == [], (name, overflowing)
    plots = p.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].filter(el => el.getClientRects().length)
        .map(el => [el.id, Math.round(el.querySelector('svg.main-svg').getBoundingClientRect().width),
                    Math.round(el.parentElement.getBoundingClientRect().width)])""")
    assert all(width <= box + 1 for _, width, box in plots), plots
    page.screenshot(f"phone390-{name}")
    page.assert_clean()


def test_disabled_buttons_look_disabled(page, warm):
    p = page.page
    _open(page, warm, "/predict")
    button = p.locator("#compare-run")
    assert button.is_disabled()
    looks = button.evaluate("b => [getComputedStyle(b).opacity, getComputedStyle(b).cursor]")
    assert float(looks[0]) < 1 and looks[1] == "not-allowed"
    page.assert_clean()


def test_keyboard_alone_uploads_a_photo(page, warm, photos):
    """Tab from the top of /predict reaches the upload control, and Enter on it opens the file chooser."""
    p = page.page
    _open(page, warm, "/predict")
    p.bring_to_front()  # the file chooser opens only from the focused window
    for _ in range(20):
        p.keyboard.press("Tab")
        if p.evaluate("document.activeElement.id") == "file-input":
            break
    else:
        pytest.fail("Tab never reaches the upload control")
    assert p.evaluate("document.activeElement.getAttribute('aria-describedby')")  # its limits are announced
    # On a loaded CI machine Chromium once dropped the activation (no chooser in 30 s, one clean-clone run of many)
    # so Enter again on the still-focused control, at most three times: it must open the chooser once.
    for attempt in range(3):
        assert p.evaluate("document.activeElement.id") == "file-input"
        try:
            with p.expect_file_chooser(timeout=10_000) as chooser:
                p.keyboard.press("Enter")
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            p.bring_to_front()
    chooser.value.set_files(str(photos["chelsea"]))
    chart = p.locator("#chart-main[data-top1]")
    chart.wait_for()
    assert chart.get_attribute("data-top1") in {"tabby", "tiger cat", "Egyptian cat"}
    page.assert_clean()
