// The inside page: a convolution's kernels (GET .../filters), every channel of
// a layer's output on your image (POST .../feature-maps) and the heatmap of
// what a prediction looked at (POST /api/explain), drawn over the input crop.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("inside-data").textContent);
  const $ = (id) => document.getElementById(id);
  if (!data.available) return;
  const api = "/api/models/" + encodeURIComponent(data.model);
  let image = null;  // the chosen Blob
  let bitmap = null;  // it decoded upright, for drawing the crop

  async function json(response) {
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    return body;
  }

  function say(id, text, isError) {
    $(id).textContent = text;
    $(id).classList.toggle("error", Boolean(isError));
  }

  const fmt = (v) => Number(v).toPrecision(3);

  // -- filters -----------------------------------------------------------
  async function showFilters() {
    const layer = $("filter-layer").value;
    say("filter-caption", "Loading the kernels of " + layer + "…");
    try {
      const body = await json(await fetch(api + "/filters?layer=" + encodeURIComponent(layer)));
      const s = body.statistics;
      $("filter-grid").src = body.png_url;
      $("filter-grid").dataset.layer = body.layer;
      say("filter-caption", body.layer + ": " + body.shape.join("×") + " (C_out×C_in/groups×kH×kW), " +
        s.count.toLocaleString() + " weights; mean " + fmt(s.mean) + ", std " + fmt(s.std) + ", min " +
        fmt(s.min) + ", max " + fmt(s.max) + (body.rgb ? "; each filter drawn in colour" :
          "; drawn " + body.shown_out + " × " + body.shown_in + " kernels"));
    } catch (err) {
      say("filter-caption", err.message, true);
    }
  }

  // -- the image ---------------------------------------------------------
  async function choose(blob, name) {
    image = blob;
    bitmap = await createImageBitmap(blob, {imageOrientation: "from-image"});
    say("image-status", name + " (" + bitmap.width + "×" + bitmap.height + " px) chosen.");
    $("map-run").disabled = false;
    if (data.methods.length) $("explain-run").disabled = false;
  }

  async function loadExamples() {
    try {
      const body = await json(await fetch("/api/predict/models"));
      for (const ex of body.examples) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = ex.title;
        button.dataset.example = ex.name;
        button.addEventListener("click", async () => {
          const response = await fetch(ex.url);
          await choose(await response.blob(), ex.title);
        });
        $("inside-examples").append(button);
      }
    } catch (err) {
      say("image-status", "No examples: " + err.message, true);
    }
  }

  function form(extra) {
    const f = new FormData();
    f.append("file", image, "upload");
    for (const [key, value] of Object.entries(extra)) if (value !== "") f.append(key, value);
    return f;
  }

  // -- feature maps ------------------------------------------------------
  let maps = null;

  async function showMaps() {
    const layer = $("map-layer").value;
    say("map-caption", "Running the image up to " + layer + "…");
    try {
      maps = await json(await fetch(api + "/feature-maps", {method: "POST", body: form({layer: layer})}));
      const [c, h, w] = maps.shape;
      $("map-grid").src = maps.png;
      $("map-grid").hidden = false;
      // small maps (7x7 at the end of a net) are enlarged, pixel for pixel, to about 32 screen pixels a tile
      const zoom = Math.max(1, Math.floor(32 / maps.grid.tile_width));
      $("map-grid").style.width = Math.min(maps.grid.width * zoom, $("map-grid").parentElement.clientWidth) + "px";
      $("map-grid").dataset.channels = String(c);
      const rf = maps.receptive_field === null ? "not a map of the input" :
        maps.receptive_field + "×" + maps.receptive_field + " input pixels, " + maps.jump + " apart";
      say("map-caption", maps.layer + " (" + maps.type + "): " + c + " channels of " + h + "×" + w +
        "; one cell sees " + rf + ". " + maps.timing_ms.toFixed(0) + " ms. Click a tile for its channel.");
      $("map-channel").textContent = "";
    } catch (err) {
      say("map-caption", err.message, true);
    }
  }

  function pickChannel(event) {
    if (!maps) return;
    const img = $("map-grid");
    const g = maps.grid;
    const x = (event.offsetX * g.width) / img.clientWidth;
    const y = (event.offsetY * g.height) / img.clientHeight;
    const column = Math.floor(x / (g.tile_width + g.gap));
    const row = Math.floor(y / (g.tile_height + g.gap));
    const index = row * g.columns + column;
    if (column >= g.columns || index >= g.count) return;
    const s = maps.channels[index];
    $("map-channel").textContent = "Channel " + index + ": min " + fmt(s.min) + ", mean " + fmt(s.mean) +
      ", max " + fmt(s.max) + " (each tile is stretched from its own min to its own max).";
  }

  // -- explanations ------------------------------------------------------
  function jet(v) {  // 0..1 -> [r, g, b]
    const r = Math.min(Math.max(1.5 - Math.abs(4 * v - 3), 0), 1);
    const g = Math.min(Math.max(1.5 - Math.abs(4 * v - 2), 0), 1);
    const b = Math.min(Math.max(1.5 - Math.abs(4 * v - 1), 0), 1);
    return [255 * r, 255 * g, 255 * b];
  }

  function drawHeatmap(body) {
    const canvas = $("explain-canvas");
    const ctx = canvas.getContext("2d");
    const c = body.crop;
    ctx.globalAlpha = 1;
    ctx.drawImage(bitmap, c.x, c.y, c.width, c.height, 0, 0, canvas.width, canvas.height);
    const heat = document.createElement("canvas");
    heat.width = body.heatmap.width;
    heat.height = body.heatmap.height;
    const pixels = heat.getContext("2d").createImageData(heat.width, heat.height);
    body.heatmap.values.forEach((v, i) => {
      const [r, g, b] = jet(v);
      pixels.data.set([r, g, b, 255], 4 * i);
    });
    heat.getContext("2d").putImageData(pixels, 0, 0);
    ctx.globalAlpha = 0.5;
    ctx.drawImage(heat, 0, 0, canvas.width, canvas.height);
    ctx.globalAlpha = 1;
    canvas.hidden = false;
    canvas.dataset.method = body.method;
  }

  async function explain() {
    const method = $("explain-method").value;
    say("explain-caption", "Computing " + $("explain-method").selectedOptions[0].textContent + "…");
    $("explain-run").disabled = true;
    try {
      const fields = {model: data.model, method: method, target: $("explain-target").value};
      if (method === "gradcam") fields.layer = $("explain-layer").value;
      const body = await json(await fetch("/api/explain", {method: "POST", body: form(fields)}));
      drawHeatmap(body);
      const t = body.target;
      say("explain-caption", "Class " + t.index + " “" + t.label + "” (probability " +
        (100 * t.probability).toFixed(1) + "%)" + (body.layer ? " at " + body.layer : "") + ", " +
        (body.timing_ms / 1000).toFixed(2) + " s.");
    } catch (err) {
      say("explain-caption", err.message, true);
    } finally {
      $("explain-run").disabled = false;
    }
  }

  $("filter-layer").addEventListener("change", showFilters);
  $("inside-file").addEventListener("change", (e) => e.target.files[0] && choose(e.target.files[0], e.target.files[0].name));
  $("map-run").addEventListener("click", showMaps);
  $("map-grid").addEventListener("click", pickChannel);
  if (data.methods.length) {
    $("explain-run").addEventListener("click", explain);
    $("explain-method").addEventListener("change", () => {
      $("explain-layer").disabled = $("explain-method").value !== "gradcam";
    });
  }
  showFilters();
  loadExamples();
})();
