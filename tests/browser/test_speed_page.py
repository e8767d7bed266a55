"""The speed pages in Chromium: measure a tiny model from its speed section,
watch the server-fed progress bar move, see the chart; measure from the
/speed table and get the charts and the budget answer."""

from __future__ import annotations

import re
import time

# Collect every value the progress bar shows, from before the click.
WATCH_PROGRESS = """(selector) => {
  window.__progress = [];
  const bar = document.querySelector(selector);
  new MutationObserver(() => window.__progress.push(Number(bar.getAttribute("aria-valuenow"))))
    .observe(bar, {attributes: true, attributeFilter: ["aria-valuenow"]});
}"""


def _options(page, scope: str, batch_sizes: str, resolution: int) -> None:
    page.click(f"{scope} .speed-options summary")
    page.fill(f"{scope} [name=batch_sizes]", batch_sizes)
    page.fill(f"{scope} [name=resolution]", str(resolution))
    page.fill(f"{scope} [name=repeats]", "3")


def test_measure_a_model_from_its_speed_section(page, live_server):
    p = page.page
    p.goto(f"{live_server}/speed?model=shufflenet_v2_x0_5#detail")
    section = ".speed-model"
    p.wait_for_selector(f"{section} .speed-status:has-text('Not measured')")
    _options(p, section, "1,2,4", 64)
    p.evaluate(WATCH_PROGRESS, f"{section} .speed-bar")
    p.click(f"{section} .speed-measure")
    p.wait_for_selector(f"{section} .speed-figure .main-svg", timeout=120_000)
    seen = p.evaluate("window.__progress")
    assert seen[-1] == 100 and len(set(seen)) >= 2 and seen == sorted(seen), seen
    assert p.is_visible(f"{section} .speed-progress")
    assert re.fullmatch(r"done: shufflenet_v2_x0_5, batch \d+ \(100%\)", p.inner_text(f"{section} .speed-label"))
    legend = p.text_content(f"{section} .speed-figure .legend")
    assert "latency, 64×64 float32" in legend and "throughput, 64×64 float32" in legend
    assert p.locator(f"{section} .speed-figure .scatterlayer .trace").count() == 2
    page.screenshot("speed-model-section")
    page.assert_clean()


def test_measure_from_the_speed_table_then_charts_and_budget(page, live_server, client):
    # One model measured through the API first, so the latency chart has two points and a fitted line.
    job = client.post("/api/models/mobilenet_v3_small/speed",
                      json={"batch_sizes": [1, 2], "resolution": 64, "warmup": 1, "repeats": 2,
                            "time_budget_s": 600}).json()
    while client.get(f"/api/jobs/{job['id']}").json()["status"] not in ("done", "failed", "cancelled"):
        time.sleep(0.05)
    p = page.page
    p.goto(f"{live_server}/speed")
    row = "tr[data-id='squeezenet1_0']"
    _options(p, ".speed-page > .speed-controls", "1,2", 64)
    with p.expect_navigation(timeout=120_000):  # the page reloads once the job has measured something
        p.click(f"{row} .speed-measure")
    p.wait_for_selector("#speed-throughput .main-svg")
    assert "unmeasured" not in (p.get_attribute(row, "class") or "")
    assert re.fullmatch(r"[\d.]+ / [\d.]+", p.inner_text(f"{row} td:nth-child(6)"))
    assert "fit: latency ∝ MACs^" in p.text_content("#speed-latency .legend")
    assert p.locator("#speed-families .main-svg").count() > 0
    assert "throughput (images/s" in p.text_content("#speed-throughput .xtitle")

    # The budget answer follows what the reader types, computed in the page.
    p.fill(".speed-budget input[name=budget_ms]", "100000")
    assert p.inner_text(".speed-best").startswith("Within 100000 ms: ")
    assert p.locator(".speed-frontier tr.best").count() == 1
    p.fill(".speed-budget input[name=budget_ms]", "0.0001")
    assert p.inner_text(".speed-best") == "No measured model with a known top-1 runs within 0.0001 ms."
    assert p.locator(".speed-frontier tr.best").count() == 0
    p.fill(".speed-budget input[name=budget_ms]", "100000")
    page.screenshot("speed-page")
    page.assert_clean()


def test_a_models_runtimes_side_by_side(page, live_server):
    """Measured from the section on eager PyTorch and then on ONNX Runtime
    (the runtime select): the section's table lists both, eager first."""
    p = page.page
    p.goto(f"{live_server}/speed?model=mnasnet0_75#detail")
    section = ".speed-model"
    p.wait_for_selector(f"{section} .speed-status:has-text('Not measured')")
    assert p.is_hidden(f"{section} .speed-runtimes")
    _options(p, section, "1,2", 64)
    for runtime, variant in (("eager", "float32"), ("onnxruntime", "float32-onnxruntime")):
        p.select_option(f"{section} [name=runtime]", runtime)
        p.click(f"{section} .speed-measure")  # the table is redrawn once the job is done
        p.wait_for_selector(f"{section} .speed-runtimes tbody tr[data-variant='{variant}']", timeout=300_000)
    rows = p.locator(f"{section} .speed-runtimes tbody tr")
    assert [rows.nth(i).get_attribute("data-variant") for i in range(rows.count())] == [
        "float32", "float32-onnxruntime"]
    cells = [rows.nth(1).locator("td").nth(i).inner_text() for i in range(4)]
    assert cells[0] == "ONNX Runtime" and re.fullmatch(r"[\d.]+", cells[1])
    assert re.fullmatch(r"[\d.]+ @ [12]", cells[2]) and re.fullmatch(r"[\d.]+×", cells[3])
    assert "float32-onnxruntime" in p.text_content(f"{section} .speed-figure .legend")
    page.screenshot("speed-model-runtimes")
    page.assert_clean()
