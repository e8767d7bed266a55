"""The model page's graph view in Debian's Chromium: it opens folded and laid
out, a folded block opens in place and its frame closes again, the colour
switch recolours, search finds a layer inside a folded block, a click goes to
the layer's row in the table and back, and SVG / PNG download. No console
error, no request off the host."""

from __future__ import annotations

import json
import struct

from playwright.sync_api import expect


def _ready(p) -> None:
    p.wait_for_selector("#graph-view[data-ready='1'] svg", timeout=30_000)


def _node_ids(p) -> list[str]:
    return p.eval_on_selector_all("#graph-view g.node", "gs => gs.map(g => g.dataset.nodeId)")


def _fill(p, node_id: str) -> str:
    return p.eval_on_selector(f"#graph-view g.node[data-node-id='{node_id}']",
                              "g => g.querySelector('path, polygon, ellipse').getAttribute('fill')")


def test_graph_opens_folded_and_blocks_open_and_close_in_place(page, live_server):
    p = page.page
    p.goto(f"{live_server}/models/googlenet")
    _ready(p)
    ids = _node_ids(p)
    # Folded at depth 2: the inception modules are open, their branches folded.
    assert "inception3a.branch2" in ids and "inception3a:cat" in ids and "inception3a.branch2.0" not in ids
    assert p.eval_on_selector("#graph-view", "v => v.querySelectorAll('g.edge').length") > len(ids) - 2
    # Side by side, in the order the concatenation takes them.
    xs = [p.eval_on_selector(f"#graph-view g.node[data-node-id='inception3a.branch{i}']",
                             "g => g.getBoundingClientRect().x") for i in range(1, 5)]
    assert xs == sorted(xs) and len(set(xs)) == 4
    labels = p.eval_on_selector("#graph-view svg", "s => s.textContent")
    assert "256×28×28" in labels and "cat" in labels  # type and output shape on the nodes

    p.click("#graph-view g.node[data-node-id='inception3a.branch2']")
    p.wait_for_selector("#graph-view g.node[data-node-id='inception3a.branch2.0']")
    _ready(p)
    assert "inception3a.branch2" not in _node_ids(p)
    assert p.query_selector("#graph-view g.cluster[data-block-id='inception3a.branch2']") is not None
    page.screenshot("graph-googlenet-open")

    p.click("#graph-view g.cluster[data-block-id='inception3a.branch2'] text.frame-title")
    p.wait_for_selector("#graph-view g.node[data-node-id='inception3a.branch2']")
    _ready(p)
    assert "inception3a.branch2.0" not in _node_ids(p)

    # The keyboard opens a folded block too.
    p.focus("#graph-view g.node[data-node-id='inception3a.branch3']")
    p.keyboard.press("Enter")
    p.wait_for_selector("#graph-view g.node[data-node-id='inception3a.branch3.0']")
    _ready(p)

    # Depth 1 folds the inception modules themselves.
    p.select_option("#graph-depth", "1")
    p.wait_for_selector("#graph-view g.node[data-node-id='inception3a']")
    assert "inception3a:cat" not in _node_ids(p)
    page.assert_clean()


def test_opened_inception_branches_run_left_to_right_and_search_replaces_its_status(page, live_server):
    p = page.page
    p.goto(f"{live_server}/models/googlenet")
    _ready(p)
    firsts = ["inception3a.branch1.conv", "inception3a.branch2.0.conv", "inception3a.branch3.0",
              "inception3a.branch4.0"]  # each branch's first node once all four are open
    p.fill("#graph-query", firsts[1])  # opens the branches around it
    p.click("#graph-search button[type=submit]")
    p.wait_for_selector(f"#graph-view g.hit[data-node-id='{firsts[1]}']")
    for block in ("inception3a.branch1", "inception3a.branch3", "inception3a.branch4"):
        p.click(f"#graph-view g.node[data-node-id='{block}']")
        p.wait_for_selector(f"#graph-view g.cluster[data-block-id='{block}']")
    _ready(p)
    xs = [p.eval_on_selector(f"#graph-view g.node[data-node-id='{node}']", "g => g.getBoundingClientRect().x")
          for node in firsts]
    assert xs == sorted(xs) and len(set(xs)) == 4, xs  # branch 1 to 4, as in the paper and the table

    p.fill("#graph-query", "zzz")
    p.click("#graph-search button[type=submit]")
    expect(p.locator("#graph-status")).to_have_text("No layer named like “zzz”.")
    p.fill("#graph-query", "fc")
    p.click("#graph-search button[type=submit]")
    p.wait_for_selector("#graph-view g.hit[data-node-id='fc']")
    expect(p.locator("#graph-status")).not_to_contain_text("No layer named like")
    page.assert_clean()


def test_colour_switch_and_click_through_to_the_table_and_back(page, live_server):
    p = page.page
    p.goto(f"{live_server}/models/resnet50")
    _ready(p)
    # Colour by MACs: the ReLU (no MACs) is white, the first convolution is not.
    assert _fill(p, "relu") == "#ffffff"
    assert _fill(p, "conv1") != "#ffffff"
    assert "MACs" in p.inner_text("#graph-legend")
    by_macs = _fill(p, "fc")
    p.check("input[name=graph-color][value=params]")
    assert "parameters" in p.inner_text("#graph-legend")
    assert _fill(p, "fc") != by_macs  # the classifier: few MACs, many parameters

    # Search opens the blocks around a layer and highlights it.
    p.fill("#graph-query", "layer3.2.conv2")
    p.click("#graph-search button[type=submit]")
    p.wait_for_selector("#graph-view g.hit[data-node-id='layer3.2.conv2']")

    p.click("#graph-view g.node[data-node-id='layer3.2.conv2']")
    assert "Conv2d" in p.inner_text("#graph-info") and "256×14×14" in p.inner_text("#graph-info")
    p.click("#graph-to-table")
    row = p.wait_for_selector("#layer-table tr.target")
    assert row.get_attribute("data-path") == "layer3.2.conv2" and row.is_visible()
    p.click("#layer-table tr.target .graph-back")
    p.wait_for_function("() => { const r = document.querySelector('#graph-view').getBoundingClientRect();"
                        " return r.top < window.innerHeight && r.bottom > 0; }")
    assert p.query_selector("#graph-view g.hit[data-node-id='layer3.2.conv2']") is not None
    page.assert_clean()


def test_downloads_svg_png_and_json(page, live_server):
    p = page.page
    p.goto(f"{live_server}/models/mobilenet_v3_large")
    _ready(p)
    with p.expect_download() as svg_download:
        p.click("#graph-svg")
    svg = open(svg_download.value.path(), encoding="utf-8").read()
    assert svg_download.value.suggested_filename == "mobilenet_v3_large-graph.svg"
    assert svg.startswith("<svg") and 'id="gn_0"' in svg and "rgb(" in svg  # coloured as shown

    with p.expect_download() as png_download:
        p.click("#graph-png")
    png = open(png_download.value.path(), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 200 and height > 1000

    with p.expect_download() as json_download:
        p.click("#graph-json")
    data = json.loads(open(json_download.value.path(), encoding="utf-8").read())
    assert sorted(n["id"] for n in data["nodes"]) == sorted(_node_ids(p))
    page.assert_clean()
