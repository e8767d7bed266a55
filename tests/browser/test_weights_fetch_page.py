"""The model page's "Fetch weights" button in Chromium: the progress bar
follows a download from a loopback server to "available"; without a network
the reason shows at once."""

from __future__ import annotations

import hashlib
import io

import torch
import torchvision


def test_fetch_button_downloads_with_a_progress_bar(page, live_server, tmp_path, monkeypatch, weights_server,
                                                    register_url_entry):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    buffer = io.BytesIO()
    torch.save(torchvision.models.squeezenet1_1().state_dict(), buffer)
    body = buffer.getvalue()
    name = f"squeezenet1_1-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    with weights_server({name: (body, len(body))}) as base_url:
        register_url_entry("squeezenet_page_fetch", f"{base_url}/{name}")
        p = page.page
        p.goto(f"{live_server}/models/squeezenet_page_fetch")
        assert p.locator("#card .badge").inner_text() == "downloadable"
        p.click("#fetch-weights")
        p.locator("#fetch-progress:not([hidden])").wait_for()
        p.locator("#fetch-message", has_text="MB").wait_for()  # bytes so far, fed by the server
        p.locator("#fetch-message", has_text="Weights fetched").wait_for(timeout=30_000)
        assert p.locator("#card .badge").inner_text() == "available" and p.locator("#fetch-weights").is_hidden()
        assert p.locator("#fetch-progress").evaluate("bar => bar.value") == 1
        assert str(tmp_path) not in p.content()
        page.screenshot("weights-fetched")
    page.assert_clean()


def test_fetch_button_without_a_network_says_why_at_once(page, live_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    p = page.page
    p.goto(f"{live_server}/models/squeezenet1_1")
    p.click("#fetch-weights")
    message = p.locator("#fetch-message")
    message.filter(has_text="network").or_(message.filter(has_text="MB")).wait_for(timeout=10_000)
    if "MB" in message.inner_text():  # a machine with a network
        return
    text = message.inner_text()
    assert "no network route to download.pytorch.org" in text and "can't reach the internet" in text
    assert "gaierror" not in text and "Errno" not in text and "convzoo weights fetch squeezenet1_1" in text
    p.reload()  # the server now knows it is offline: the badge's reason offers no fetch
    title = p.locator("#card .badge").get_attribute("title")
    assert "can't reach the internet" in title and "Fetch them from the model page" not in title
    assert p.locator("#fetch-weights").is_enabled()
    page.expect_console_error("409")
    page.assert_clean()
