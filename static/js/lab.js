// The lab page: each section's form asks its /api/lab endpoint and redraws from
// the JSON. No numbers are computed here beyond formatting; figures come built.
"use strict";

(function () {
  const fmt = (n) => Number(n).toLocaleString("en-US");
  const ratio = (x) => Number(x).toFixed(2);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  function table(head, rows, totalRows) {
    const thead = el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h))));
    const body = el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => c instanceof Node ? c : el("td", {}, c)))));
    const foot = el("tfoot", {}, ...(totalRows || []).map((r) => el("tr", {}, ...r.map((c) => c instanceof Node ? c : el("td", {}, c)))));
    return el("table", { class: "lab-table" }, thead, body, foot);
  }

  const cell = (field, value) => el("td", { "data-field": field }, value);
  function saving(after, before) {
    const pct = Math.round(100 * (1 - after / before));
    return pct > 0 ? `${pct}% fewer weights` : pct < 0 ? `${-pct}% more weights` : "as many weights";
  }
  // before / after as words that notice the direction: "cut weights 3.02x", "raise MACs 1.25x", "leave ... unchanged".
  function change(what, beforeOverAfter) {
    const r = Number(beforeOverAfter);
    if (Math.abs(r - 1) < 0.005) return `leave ${what} unchanged`;
    return r > 1 ? `cut ${what} ${ratio(r)}x` : `raise ${what} ${ratio(1 / r)}x`;
  }

  function fill(section, slot, ...nodes) {
    section.querySelector(`[data-slot="${slot}"]`).replaceChildren(...nodes);
  }

  function drawFigure(section, figure) {
    const div = section.querySelector('[data-slot="chart"]');
    if (div && window.Plotly) {
      Plotly.react(div, figure.data, figure.layout, { displayModeBar: false, responsive: true });
    }
  }

  function inceptionTable(result, prefix) {
    const rows = [];
    for (const branch of result.branches) {
      for (const layer of branch.layers) {
        rows.push([branch.name, layer.kind, `${layer.in_channels} → ${layer.out_channels}`,
          fmt(layer.weights), fmt(layer.biases), fmt(layer.macs)]);
      }
    }
    const t = result.total;
    const [c, h, w] = result.output_shape;
    return [
      table(["branch", "layer", "channels", "weights", "biases", "MACs"], rows, [[
        el("th", {}, "total"), "", cell(`${prefix}-channels`, `${result.input_shape[0]} → ${c}`),
        cell(`${prefix}-weights`, fmt(t.weights)), cell(`${prefix}-biases`, fmt(t.biases)),
        cell(`${prefix}-macs`, fmt(t.macs))]]),
      el("p", { class: "muted" }, `Output ${h} x ${w} x ${c}; branches give `,
        result.branches.map((b) => `${b.name}: ${b.output_channels}`).join(", "), " channels."),
    ];
  }

  // The lectures' figures about inception modules (/api/lab/numbers), shown
  // with their verdicts when the calculator holds the module they quote.
  const VERDICT = { exact: "exact", rounded: "rounded", other_variant: "other variant", wrong: "wrong" };
  const lectureClaims = fetch("/api/lab/numbers", { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : { claims: [] })).then((d) => d.claims.filter((c) => c.lab))
    .catch(() => []);

  async function showClaims(section) {
    const params = query(section.querySelector("form"));
    const claims = (await lectureClaims).filter((c) =>
      Object.entries(c.lab).every(([k, v]) => params.get(k) === String(v)));
    const slot = section.querySelector('[data-slot="claims"]');
    slot.hidden = claims.length === 0;
    slot.replaceChildren(el("h3", {}, "What the lectures say about this module"), el("ul", { class: "lecture-claims" },
      ...claims.map((c) => el("li", { "data-claim": c.id }, `${c.source}: “${c.claim}” — computed ${fmt(c.computed)} `,
        el("span", { class: `verdict verdict-${c.verdict}` }, VERDICT[c.verdict]), " ",
        el("a", { href: `/lab/numbers#${c.id}` }, "why")))));
  }

  const RENDER = {
    bottleneck(section, d) {
      fill(section, "naive", ...inceptionTable(d.naive, "naive"));
      fill(section, "reduced", ...inceptionTable(d.reduced, "reduced"));
      showClaims(section);
      fill(section, "summary", `The reductions ${change("weights", d.weights_ratio)} and `,
        `${change("multiply-adds", d.macs_ratio)}; output depth ${d.naive.output_shape[0]} (naive) vs ${d.reduced.output_shape[0]}.`);
      drawFigure(section, d.figure);
    },
    "output-size"(section, d) {
      fill(section, "output", String(d.output));
      fill(section, "torch", `(PyTorch on a ${d.size} x ${d.size} input gives ${d.torch_output} x ${d.torch_output})`);
      fill(section, "steps", ...d.steps.map((s) => el("li", {}, s)));
    },
    "receptive-field"(section, d) {
      const row = (v, key) => [v.name, cell(`${key}-rf`, `${v.receptive_field} x ${v.receptive_field}`),
        v.receptive_fields.join(" → "), cell(`${key}-weights`, fmt(v.weights)), fmt(v.macs), String(v.nonlinearities)];
      fill(section, "table", table(["layers", "receptive field", "after each layer", "weights", "MACs", "non-linearities"],
        [row(d.stack, "stack"), row(d.single, "single")]));
      fill(section, "summary", `For D = ${d.channels}: one ${d.single.receptive_field}x${d.single.receptive_field} `,
        `layer holds ${ratio(d.weights_ratio)}x the weights of ${d.layers} stacked ${d.kernel}x${d.kernel} layers `,
        `(${fmt(d.single.weights)} vs ${fmt(d.stack.weights)}).`);
    },
    "receptive-growth"(section, d) {
      const map = d.last_feature_map;
      const mixer = d.points.find((p) => p.receptive_field_global);
      const link = el("a", { href: `/models/${d.model}` }, d.name);
      const mapText = map ? `: each cell of its last feature map (${map.path}, before any layer mixes all positions) sees ` +
        `${map.receptive_field} x ${map.receptive_field} input pixels, neighbours ${map.jump} pixels apart; ` : ": ";
      const mixText = mixer ? `from ${mixer.path} (${mixer.type}) on, every output mixes all positions and so sees ` +
        `the whole ${d.input_size} x ${d.input_size} input.` : `the input is ${d.input_size} x ${d.input_size}.`;
      fill(section, "summary", link, mapText, mixText, ` ${d.points.length} layers widen the view.`);
      fill(section, "table", table(["layer", "type", "output", "receptive field", "jump"], d.points.map((p) => [
        p.path, p.type, p.output_shape ? p.output_shape.slice(1).join(" x ") : "—",
        cell(`rf-${p.path}`, p.receptive_field_global ? `${p.receptive_field} (global: the whole input)` : String(p.receptive_field)),
        cell(`jump-${p.path}`, String(p.jump))])));
      drawFigure(section, d.figure);
    },
    factorised(section, d) {
      const base = d.variants[0];
      const rows = d.variants.map((v, i) => [v.name, v.layers.map((l) => l.kind).join(" + "),
        cell(`variant${i}-weights`, fmt(v.weights)), fmt(v.macs), `${v.receptive_field} x ${v.receptive_field}`,
        i === 0 ? "—" : saving(v.weights, base.weights)]);
      fill(section, "table", table(["variant", "layers", "weights", "MACs", "receptive field", "saving"], rows));
    },
    separable(section, d) {
      const [n, m, k] = [d.in_channels, d.out_channels, d.kernel];
      fill(section, "table", table(["layer", "weights", "formula", "MACs"], [
        ["standard", cell("standard-weights", fmt(d.standard.weights)), `N·K·K·M = ${n}·${k}·${k}·${m}`, fmt(d.standard.macs)],
        ["depthwise + pointwise", cell("separable-weights", fmt(d.separable.weights)),
          `N·(K·K + M) = ${n}·(${k}·${k} + ${m})`, fmt(d.separable.macs)],
      ]));
      fill(section, "summary", `Separable / standard: ${Number(d.weights_ratio).toFixed(4)} of the weights and `,
        `${Number(d.macs_ratio).toFixed(4)} of the multiply-adds (1/M + 1/K² = ${(1 / m + 1 / (k * k)).toFixed(4)}).`);
    },
    mobilenet(section, d) {
      const at = (m, r) => d.cells.find((c) => c.multiplier === m && c.resolution === r);
      const name = (m) => (Number.isInteger(m) ? m.toFixed(1) : String(m));
      const rows = d.multipliers.map((m) => [`width ${name(m)}`, cell(`params-${name(m)}`, fmt(at(m, d.resolutions[0]).params)),
        ...d.resolutions.map((r) => cell(`macs-${name(m)}-${r}`, fmt(at(m, r).macs)))]);
      fill(section, "table", table(["width multiplier", "params", ...d.resolutions.map((r) => `MACs at ${r}`)], rows));
      drawFigure(section, d.figure);
    },
  };

  function query(form) {
    const params = new URLSearchParams();
    for (const input of form.querySelectorAll("input, select")) {
      params.set(input.name, input.type === "checkbox" ? String(input.checked) : input.value);
    }
    return params;
  }

  function showError(section, message) {
    const box = section.querySelector(".lab-error");
    box.hidden = !message;
    box.textContent = message || "";
    section.classList.toggle("lab-stale", Boolean(message));
  }

  function wire(section) {
    const form = section.querySelector("form");
    if (!form) return;
    let timer = null;
    let latest = 0;
    async function update() {
      const ticket = ++latest;
      let body;
      let ok = false;
      try {
        const response = await fetch(`${section.dataset.endpoint}?${query(form)}`, { headers: { Accept: "application/json" } });
        ok = response.ok;
        body = await response.json();
      } catch (err) {
        body = { error: { message: "The server could not be reached; try again." } };
      }
      if (ticket !== latest) return; // a newer request is on its way
      if (!ok) {
        showError(section, (body.error && body.error.message) || "That input was refused.");
        return;
      }
      showError(section, "");
      RENDER[section.id](section, body);
      section.dataset.updated = String(ticket);
    }
    const later = () => { clearTimeout(timer); timer = setTimeout(update, 200); };
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    form.addEventListener("submit", (e) => { e.preventDefault(); update(); });
    function apply(values) {
      for (const [name, value] of Object.entries(values)) {
        const input = form.elements[name];
        if (!input) continue;
        if (input.type === "checkbox") input.checked = value === true || value === "true"; else input.value = value;
      }
      clearTimeout(timer);
      update();
    }
    for (const button of form.querySelectorAll("[data-preset]")) {
      button.addEventListener("click", () => apply(JSON.parse(button.dataset.preset)));
    }
    // A link to one section with its inputs in the query (/lab?height=28&...#bottleneck,
    // as /lab/numbers gives them) opens that section on those inputs.
    const asked = new URLSearchParams(location.search);
    if (location.hash === `#${section.id}` && [...asked.keys()].some((name) => form.elements[name])) {
      apply(Object.fromEntries(asked));
    }
  }

  const data = JSON.parse(document.getElementById("lab-data").textContent);
  const initial = {
    bottleneck: data.bottleneck, "output-size": data.output_size, "receptive-field": data.receptive_field,
    "receptive-growth": data.growth,
    factorised: data.factorised, separable: data.separable, mobilenet: data.mobilenet,
  };
  for (const section of document.querySelectorAll(".lab-section")) {
    RENDER[section.id](section, initial[section.id]);
    wire(section);
  }
})();
