"""The /predict page in Chromium: upload a real photo and see the top-5 chart,
click an example, compare models side by side; no console errors and no
request leaves the server."""

from __future__ import annotations

import pytest
import torch
import torchvision

from models.registry import get_entry
from models.weights import torchvision_checkpoint_path


def test_upload_example_and_side_by_side(page, live_server, photos, tmp_path, monkeypatch):
    # A second model with weights: squeezenet1_1 with random ones in a temporary torch cache.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoint = torchvision_checkpoint_path(get_entry("squeezenet1_1"))
    checkpoint.parent.mkdir(parents=True)
    torch.save(torchvision.models.squeezenet1_1().state_dict(), checkpoint)
    p = page.page
    p.goto(f"{live_server}/predict")
    assert p.locator("#model-select option:checked").inner_text().strip() == "EfficientNet-Lite0"
    # Only the models that can predict are offered; the others are counted, with a link to each one's reason.
    assert p.locator("#model-select option[value=vgg16]").count() == 0
    assert p.locator("#model-select option[value=squeezenet1_1]").count() == 1
    assert "convzoo weights fetch" in p.locator("#unavailable-note").inner_text()
    assert p.locator("#unavailable-note a").get_attribute("href") == "/api/predict/models?available=false"

    p.set_input_files("#file-input", str(photos["chelsea"]))
    chart = p.locator("#chart-main[data-top1]")
    chart.wait_for()
    assert chart.get_attribute("data-top1") in {"tabby", "tiger cat", "Egyptian cat"}
    assert p.locator("#chart-main .bars .point").count() == 5
    assert "probability" in p.locator("#chart-main .xtitle").text_content()
    assert p.locator("#preview").get_attribute("src").startswith("blob:")
    assert "ms" in p.locator("#timing").inner_text()
    page.screenshot("predict-upload")

    p.click(".example[data-example=coffee]")
    p.locator("#chart-main[data-top1=espresso]").wait_for()

    p.check("#compare-pick input[value=squeezenet1_1]")
    p.click("#compare-run")
    p.locator("#compare-grid .compare-cell[data-model=squeezenet1_1]").wait_for()
    lite0 = p.locator("#compare-grid .compare-cell[data-model=efficientnet_lite0]")
    lite0.wait_for()
    assert lite0.get_attribute("data-top1") == "espresso"
    assert p.locator("#compare-grid .compare-cell .bars .point").count() == 10
    page.screenshot("predict-compare")
    page.assert_clean()


def test_a_bad_file_shows_the_servers_message(page, live_server, tmp_path):
    p = page.page
    p.goto(f"{live_server}/predict")
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    p.set_input_files("#file-input", str(bad))
    p.locator("#status.error").wait_for()
    assert "Not an image" in p.locator("#status").inner_text()
    page.expect_console_error("status of 415")  # Chromium logs the failed fetch itself
    page.assert_clean()


def test_a_blank_image_gets_a_note_beside_its_top5(page, live_server, photos, tmp_path):
    """A top-5 for a blank page says nothing about content: the page says so, and the note goes
    with the next, real photo."""
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (255, 255, 255)).save(blank)
    p = page.page
    p.goto(f"{live_server}/predict")
    assert p.locator("#notes").is_hidden()
    p.set_input_files("#file-input", str(blank))
    p.locator("#chart-main[data-top1]").wait_for()
    assert "one flat colour (blank)" in p.locator("#notes").inner_text()
    p.set_input_files("#file-input", str(photos["chelsea"]))
    p.locator("#chart-main[data-top1]").wait_for()
    assert p.locator("#notes").is_hidden() and p.locator("#notes li").count() == 0
    page.assert_clean()


def test_a_photo_of_a_handwritten_digit_read_by_lenet5(page, live_server, tmp_path, held_out_digits,
                                                        make_digit_photo):
    images, labels = held_out_digits
    photo = tmp_path / "digit.jpg"
    photo.write_bytes(make_digit_photo(images[3], dark_on_light=True, seed=3))
    p = page.page
    p.goto(f"{live_server}/predict")
    p.select_option("#model-select", "lenet5")
    p.set_input_files("#file-input", str(photo))
    p.locator(f"#chart-main[data-top1='{labels[3]}']").wait_for(timeout=60_000)  # trains LeNet-5 if not yet
    assert p.locator("#chart-main .bars .point").count() == 5
    ticks = p.locator("#chart-main .ytick text").evaluate_all("els => els.map(e => e.textContent)")
    assert len(set(ticks)) == 5 and str(labels[3]) in ticks  # one tick per digit: a category axis, not numbers
    page.screenshot("predict-digit")
    page.assert_clean()


def test_a_first_load_says_the_model_is_being_prepared(page, live_server, photos, monkeypatch):
    """Lite1's first prediction (on ONNX Runtime: an export of up to a minute)
    shows its stage while the page waits; the real load is held at its start
    until the page has shown it."""
    import threading

    import models.predictor

    p = page.page
    p.goto(f"{live_server}/predict")
    lite1 = next(m for m in p.evaluate("JSON.parse(document.getElementById('predict-data').textContent).models")
                 if m["id"] == "efficientnet_lite1")
    if lite1["state"] != "not_loaded":
        pytest.skip("an earlier test in this session loaded Lite1 already")
    gate = threading.Event()
    real_load = models.predictor.load_pretrained

    def held(entry, device):
        if entry.id == "efficientnet_lite1":
            gate.wait(120)
        return real_load(entry, device)

    monkeypatch.setattr(models.predictor, "load_pretrained", held)
    try:
        p.select_option("#model-select", "efficientnet_lite1")
        assert "Not loaded yet" in p.locator("#model-state").inner_text()
        p.set_input_files("#file-input", str(photos["chelsea"]))
        # (it may first wait behind the start-up preload of another model)
        p.locator("#status[data-state=preparing]", has_text="Preparing EfficientNet-Lite1 for its first "
                  "prediction: loading its weights").wait_for(timeout=60_000)
        page.screenshot("predict-preparing")
    finally:
        gate.set()
    p.locator("#chart-main[data-top1]").wait_for(timeout=180_000)
    assert "preparing the model (first use)" in p.locator("#timing").inner_text()
    assert p.locator("#model-state").inner_text() == ""
    page.assert_clean()
