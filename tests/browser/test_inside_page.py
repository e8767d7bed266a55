"""The inside page in Chromium on EfficientNet-Lite0's real weights: the stem's
filters, an example photo's feature maps with a channel picked by a click,
and a Grad-CAM heatmap drawn over the crop; no console errors and no request
leaves the server."""

from __future__ import annotations

from PIL import Image

CATS = ("tabby", "tiger cat", "Egyptian cat")


def test_filters_feature_maps_and_gradcam(page, live_server, photos):
    p = page.page
    p.goto(f"{live_server}/models/efficientnet_lite0")
    p.click("#inside-link")
    p.wait_for_url("**/models/efficientnet_lite0/inside")

    p.locator("#filter-caption", has_text="32×3×3×3").wait_for()
    assert "stride 2×2, padding top 0, bottom 1, left 0, right 1 px (same)" in p.locator("#filter-caption").inner_text()
    p.wait_for_function("document.getElementById('filter-grid').complete"
                        " && document.getElementById('filter-grid').naturalWidth > 0")  # the caption comes first
    assert p.eval_on_selector("#filter-grid", "img => img.naturalWidth") == 6 * 24 + 5 * 2
    p.select_option("#filter-layer", "blocks.1.0.conv_dw")
    p.locator("#filter-caption", has_text="96×1×3×3").wait_for()

    p.set_input_files("#inside-file", str(photos["coffee"]))
    p.locator("#image-status", has_text="600×400").wait_for()
    p.select_option("#map-layer", "blocks.1")
    p.click("#map-run")
    p.locator("#map-caption", has_text="24 channels of 56×56").wait_for()
    p.locator("#map-caption", has_text="one cell sees 19×19 input pixels, 4 apart").wait_for()
    p.wait_for_function("document.getElementById('map-grid').naturalWidth > 0")
    p.click("#map-grid", position={"x": 5, "y": 5})
    assert p.locator("#map-channel").inner_text().startswith("Channel 0:")

    p.click("#inside-examples button[data-example=chelsea]")
    p.locator("#image-status", has_text="451×300").wait_for()
    p.click("#explain-run")
    p.locator("#explain-canvas[data-method=gradcam]").wait_for()
    caption = p.locator("#explain-caption").inner_text()
    assert "at bn2.act" in caption and any(cat in caption for cat in ("tabby", "tiger cat", "Egyptian cat"))
    # the heatmap is drawn: the canvas is not the bare photo's colours everywhere (jet blue/red over it)
    spread = p.evaluate("""() => { const c = document.getElementById('explain-canvas').getContext('2d');
        const d = c.getImageData(0, 0, 448, 448).data; let lo = 255, hi = 0;
        for (let i = 2; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); } return hi - lo; }""")
    assert spread > 100
    page.screenshot("inside-gradcam")
    page.assert_clean()


def test_a_model_without_weights_says_why(page, live_server):
    p = page.page
    p.goto(f"{live_server}/models/zfnet/inside")
    assert "Nothing to show" in p.locator("#unavailable").inner_text()
    page.assert_clean()


def test_the_inside_page_fits_a_phone(page, live_server):
    p = page.page
    p.set_viewport_size({"width": 390, "height": 844})
    p.goto(f"{live_server}/models/efficientnet_lite0/inside")
    p.locator("#filter-caption", has_text="32×3×3×3").wait_for()
    assert p.evaluate("document.documentElement.scrollWidth") <= 390
    wide = p.evaluate("""() => [...document.querySelectorAll('select, input, button')]
        .filter(el => el.getBoundingClientRect().right > innerWidth + 1).map(el => el.id)""")
    assert wide == []
    # the methods' details live beside the menu, not in its options
    assert p.locator("#explain-method option").all_inner_texts() == [
        "Grad-CAM", "Occlusion", "Guided backpropagation", "DeconvNet"]
    assert "169 forward passes" not in p.locator("#explain-hint").inner_text()
    p.select_option("#explain-method", "occlusion")
    assert "169 forward passes" in p.locator("#explain-hint").inner_text()
    page.assert_clean()


def test_a_tiff_the_browser_cannot_decode_is_explained_over_the_servers_crop(page, live_server, photos, tmp_path):
    tiff = tmp_path / "chelsea.tiff"
    Image.open(photos["chelsea"]).convert("RGB").save(tiff, format="TIFF")
    p = page.page
    p.goto(f"{live_server}/models/efficientnet_lite0/inside")
    p.set_input_files("#inside-file", str(tiff))  # on a fresh page: usable at once, and it says so
    p.locator("#image-status", has_text="chelsea.tiff chosen").wait_for()
    assert "can't display" in p.locator("#image-status").inner_text()
    assert p.locator("#explain-run").is_enabled() and p.locator("#map-run").is_enabled()

    p.set_input_files("#inside-file", str(photos["coffee"]))
    p.locator("#image-status", has_text="600×400").wait_for()
    p.click("#explain-run")
    p.locator("#explain-canvas[data-under=upload]").wait_for()
    assert "coffee.png" in p.locator("#explain-caption").inner_text()

    p.set_input_files("#inside-file", str(tiff))  # the coffee's heatmap and caption go at once
    p.locator("#image-status", has_text="chelsea.tiff chosen").wait_for()
    assert p.locator("#explain-canvas").is_hidden() and p.locator("#explain-caption").inner_text() == ""
    p.click("#explain-run")
    p.locator("#explain-canvas[data-under=server-crop]").wait_for()
    caption = p.locator("#explain-caption").inner_text()
    assert caption.startswith("chelsea.tiff:") and any(cat in caption for cat in CATS), caption
    page.assert_clean()


def test_a_result_that_arrives_after_the_input_changed_is_dropped(page, live_server, photos):
    p = page.page
    p.goto(f"{live_server}/models/efficientnet_lite0/inside")
    p.set_input_files("#inside-file", str(photos["coffee"]))
    p.locator("#image-status", has_text="600×400").wait_for()
    p.select_option("#explain-method", "occlusion")  # seconds of work: time to change the image meanwhile
    p.click("#explain-run")
    p.click("#inside-examples button[data-example=chelsea]")
    p.locator("#image-status", has_text="451×300").wait_for()
    p.wait_for_timeout(6000)  # the coffee's occlusion has come back by now, and was dropped
    assert p.locator("#explain-canvas").is_hidden() and p.locator("#explain-caption").inner_text() == ""
    page.assert_clean()


def test_lenet5_explains_a_digit_and_says_why_the_relu_rules_are_not_offered(page, live_server, tmp_path):
    from models.digits import bitmap_image, load_digit_data

    images, labels = load_digit_data()
    seven = Image.eval(bitmap_image(images[int((labels == 7).nonzero()[0][-1])]).resize((128, 128)), lambda v: 255 - v)
    seven.save(tmp_path / "seven.png")
    p = page.page
    p.goto(f"{live_server}/models/lenet5/inside")
    assert p.locator("#explain-method option").all_inner_texts() == ["Grad-CAM", "Occlusion"]
    why = p.locator("#unavailable-methods").inner_text()
    assert "guided_backprop, deconvnet" in why and "ReLU" in why and "Tanh" in why
    p.set_input_files("#inside-file", str(tmp_path / "seven.png"))
    p.locator("#image-status", has_text="128×128").wait_for()
    for method in ("gradcam", "occlusion"):
        p.select_option("#explain-method", method)
        p.click("#explain-run")
        p.locator(f"#explain-canvas[data-method={method}]").wait_for()
        assert "“7”" in p.locator("#explain-caption").inner_text()
        assert p.get_attribute("#explain-canvas", "data-under") == "server-crop"  # over the input the net saw
    page.screenshot("inside-lenet5-occlusion")
    page.assert_clean()
