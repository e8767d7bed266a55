// The model page's graph view. The server folds the graph
// (/api/models/{id}/graph) and lays it out with Graphviz (…/graph.svg: node i
// of the JSON is <g id="gn_i">, open block j is the frame <g id="gb_j">). Here:
// colour by MACs or params, open a folded block by clicking it, close a frame
// by clicking its title, find a layer by name, jump to a node's row in the
// layer table and back, download SVG / PNG.
(function () {
  const view = document.getElementById("graph-view");
  if (!view) return;
  const status = document.getElementById("graph-status");
  const info = document.getElementById("graph-info");
  const legend = document.getElementById("graph-legend");
  const depthSelect = document.getElementById("graph-depth");
  const jsonLink = document.getElementById("graph-json");
  const model = view.dataset.model;
  let state = {depth: view.dataset.depth, opened: [], closed: []};
  let graph = null;
  let color = "macs";

  function query(s) {
    const params = new URLSearchParams();
    if (view.dataset.resolution) params.set("resolution", view.dataset.resolution);
    if (s.depth) params.set("depth", s.depth);
    if (s.opened.length) params.set("open", s.opened.join(","));
    if (s.closed.length) params.set("close", s.closed.join(","));
    return params.toString();
  }

  async function load(next, focusPath) {
    const start = performance.now();
    status.textContent = "Laying the graph out…";
    delete view.dataset.ready;
    const q = query(next);
    let g, svg;
    try {
      [g, svg] = await Promise.all([fetch(`/api/models/${model}/graph?${q}`), fetch(`/api/models/${model}/graph.svg?${q}`)]);
    } catch (error) {
      status.textContent = `The graph could not be fetched: ${error.message}`;
      view.dataset.ready = "1";
      return;
    }
    if (!g.ok || !svg.ok) {
      const body = await (g.ok ? svg : g).json();
      status.textContent = body.error.message;  // the graph drawn before stays, and so do its controls
      depthSelect.value = state.depth || "";
      view.dataset.ready = "1";
      return;
    }
    state = next;
    graph = await g.json();
    const doc = new DOMParser().parseFromString(await svg.text(), "image/svg+xml");
    view.replaceChildren(document.importNode(doc.documentElement, true));
    decorate();
    paint();
    jsonLink.href = `/api/models/${model}/graph?${q}`;
    depthSelect.value = state.depth || "";
    info.hidden = true;
    const ms = performance.now() - start;
    view.dataset.renderMs = ms.toFixed(0);
    status.textContent = `${graph.nodes.length} nodes, ${graph.edges.length} edges · laid out in ${ms.toFixed(0)} ms`;
    view.dataset.ready = "1";
    if (focusPath !== undefined) highlight(findVisible(focusPath));
  }

  const nodeEl = (i) => view.querySelector(`#gn_${i}`);

  function decorate() {
    graph.nodes.forEach((node, i) => {
      const el = nodeEl(i);
      if (!el) return;
      el.dataset.nodeId = node.id;
      const act = () => (node.folded ? toggle(node.id, true) : select(i));
      keyboardButton(el, act);
    });
    graph.blocks.forEach((block, j) => {
      const frame = view.querySelector(`#gb_${j}`);
      const title = frame && frame.querySelector("text");
      if (!title) return;
      frame.dataset.blockId = block.id;
      title.classList.add("frame-title");
      keyboardButton(title, () => toggle(block.id, false));
    });
  }

  // Clickable, and reachable with Tab and pressed with Enter or Space.
  function keyboardButton(el, act) {
    el.setAttribute("tabindex", "0");
    el.setAttribute("role", "button");
    el.addEventListener("click", act);
    el.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        act();
      }
    });
  }

  function toggle(id, open) {
    const next = {depth: state.depth, opened: state.opened.filter((b) => b !== id), closed: state.closed.filter((b) => b !== id)};
    (open ? next.opened : next.closed).push(id);
    const node = [...graph.nodes, ...graph.blocks].find((n) => n.id === id);
    load(next, node ? node.path : undefined);
  }

  // Light to dark on a log scale between the smallest and largest non-zero value shown.
  function shade(t) {
    const from = [255, 244, 230], to = [247, 140, 40];
    return `rgb(${from.map((c, k) => Math.round(c + t * (to[k] - c))).join(",")})`;
  }

  function paint() {
    const values = graph.nodes.map((n) => n[color]);
    const positive = values.filter((v) => v > 0);
    const lo = Math.log10(Math.min(...positive, Infinity)), hi = Math.log10(Math.max(...positive, 1));
    graph.nodes.forEach((node, i) => {
      const shape = nodeEl(i) && nodeEl(i).querySelector("path, polygon, ellipse");
      if (!shape) return;
      const v = values[i];
      const t = v > 0 ? (hi > lo ? (Math.log10(v) - lo) / (hi - lo) : 1) : null;
      shape.setAttribute("fill", t === null ? "#ffffff" : shade(0.15 + 0.85 * t));
    });
    const label = color === "macs" ? "MACs" : "parameters";
    legend.innerHTML = positive.length
      ? `Colour: ${label} (log scale), from <span class="swatch" style="background:${shade(0.15)}"></span> ${fmt(Math.min(...positive))}
         to <span class="swatch" style="background:${shade(1)}"></span> ${fmt(Math.max(...positive))}; white: none.`
      : `No ${label} in the nodes shown.`;
  }

  function fmt(v) {
    const units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [size, unit] of units) if (v >= size) return (v / size).toFixed(v >= 10 * size ? 0 : 1) + unit;
    return String(v);
  }

  function select(i) {
    const node = graph.nodes[i];
    highlight(i);
    const shape = node.output_shape ? node.output_shape.slice(1).join("×") : "—";
    info.replaceChildren();
    const text = document.createElement("span");
    text.textContent = `${node.path || "(model)"} · ${node.type} · output ${shape} · params ${node.params.toLocaleString("en")}` +
      ` · MACs ${node.macs.toLocaleString("en")}` + (node.receptive_field ? ` · receptive field ${node.receptive_field}` : "");
    info.append(text);
    if (node.row !== null) info.append(button("Row in the layer table ↓", () => revealRow(node.row, i), "graph-to-table"));
    if (node.parent && graph.blocks.some((b) => b.id === node.parent)) {
      info.append(button("Close its block", () => toggle(node.parent, false), "graph-close-parent"));
    }
    info.hidden = false;
  }

  function button(text, onClick, id) {
    const b = document.createElement("button");
    b.type = "button";
    b.id = id;
    b.textContent = text;
    b.addEventListener("click", onClick);
    return b;
  }

  function highlight(i) {
    view.querySelectorAll("g.hit").forEach((g) => g.classList.remove("hit"));
    const el = i === undefined || i < 0 ? null : nodeEl(i);
    if (!el) return;
    el.classList.add("hit");
    el.scrollIntoView({block: "center", inline: "center"});
  }

  // The visible node for a layer path: the node itself or the folded block around it.
  function findVisible(path) {
    let best = -1, bestLength = -1;
    graph.nodes.forEach((node, i) => {
      const inside = node.path === path || (node.folded && path.startsWith(node.path + "."));
      if (inside && node.kind !== "op" && node.path.length > bestLength) [best, bestLength] = [i, node.path.length];
    });
    return best;
  }

  // The layer table (static/js/model.js) opens the blocks above row i, marks
  // it and scrolls to it; the row gets a button back to the node.
  function revealRow(row, nodeIndex) {
    const table = document.getElementById("layer-table");
    table.dispatchEvent(new CustomEvent("reveal-row", {detail: {row}}));
    const tr = table.querySelector(`tr[data-row="${row}"]`);
    table.querySelectorAll(".graph-back").forEach((b) => b.remove());
    const back = button("↑ graph", () => {
      view.scrollIntoView({block: "start"});
      highlight(nodeIndex);
    }, "graph-back");
    back.className = "graph-back";
    tr.querySelector("td").append(back);
  }

  function search(text) {
    const q = text.trim().toLowerCase();
    if (!q) return;
    const paths = Array.from(document.querySelectorAll("#layer-table tbody tr"), (tr) => tr.dataset.path);
    const match = paths.find((p) => p.toLowerCase() === q) || paths.find((p) => p.toLowerCase().includes(q));
    if (match === undefined) {
      status.textContent = `No layer named like “${text.trim()}”.`;
      return;
    }
    status.textContent = `Found ${match}.`;  // a search's answer replaces the one before ("No layer named like …")
    const blocks = new Set(Array.from(document.querySelectorAll("#layer-table tr.block"), (tr) => tr.dataset.path));
    const parts = match.split(".");
    const ancestors = parts.slice(1).map((_, k) => parts.slice(0, k + 1).join(".")).filter((p) => blocks.has(p));
    const next = {depth: state.depth, opened: [...new Set([...state.opened, ...ancestors])],
                  closed: state.closed.filter((b) => !ancestors.includes(b))};
    const shown = findVisible(match);
    if (shown >= 0 && graph.nodes[shown].path === match) highlight(shown);
    else load(next, match);
  }

  function download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  function svgText() {
    return new XMLSerializer().serializeToString(view.querySelector("svg"));
  }

  function exportPng() {
    const svg = view.querySelector("svg");
    const box = svg.viewBox.baseVal;
    // Two pixels per point, within the canvas limits of browsers (16k a side).
    const scale = Math.min(2, 16000 / Math.max(box.width, box.height));
    const image = new Image();
    const url = URL.createObjectURL(new Blob([svgText()], {type: "image/svg+xml"}));
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = Math.ceil(box.width * scale);
      canvas.height = Math.ceil(box.height * scale);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => download(blob, `${model}-graph.png`), "image/png");
    };
    image.src = url;
  }

  depthSelect.addEventListener("change", () => load({depth: depthSelect.value, opened: [], closed: []}));
  document.querySelectorAll("input[name=graph-color]").forEach((radio) => radio.addEventListener("change", () => {
    color = radio.value;
    paint();
  }));
  document.getElementById("graph-search").addEventListener("submit", (event) => {
    event.preventDefault();
    search(document.getElementById("graph-query").value);
  });
  document.getElementById("graph-svg").addEventListener("click", () =>
    download(new Blob([svgText()], {type: "image/svg+xml"}), `${model}-graph.svg`));
  document.getElementById("graph-png").addEventListener("click", exportPng);
  load(state);
})();
