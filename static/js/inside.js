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
  let bitmap = null;  // it decoded upright, for drawing the crop; null where this browser can't decode it
  let maps = null;  // the last feature maps' answer, for picking a channel

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
  function padding(body) {  // what the layer adds at the model's input size, the odd TF 'SAME' pixel too
    const declared = typeof body.padding === "string" ? " (" + body.padding + ")" : "";
    if (!body.padding_applied) return "padding " + JSON.stringify(body.padding);
    const [t, b, l, r] = body.padding_applied;
    return "padding top " + t + ", bottom " + b + ", left " + l + ", right " + r + " px" + declared;
  }

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
        fmt(s.min) + ", max " + fmt(s.max) + "; stride " + body.stride.join("×") + ", " + padding(body) +
        (body.rgb ? "; each filter drawn in colour" :
          "; drawn " + body.shown_out + " × " + body.shown_in + " kernels"));
    } catch (err) {
      say("filter-caption", err.message, true);
    }
  }

  // -- the image ---------------------------------------------------------
  // Every change of input starts a new generation: results computed for an
  // older one are dropped, never drawn over the new image.
  let generation = 0;
  let imageName = "";

  function clearResults() {
    maps = null;
    $("map-grid").hidden = true;
    $("map-grid").removeAttribute("src");
    say("map-caption", "");
    $("map-channel").textContent = "";
    if (!data.methods.length) return;
    $("explain-canvas").hidden = true;
    delete $("explain-canvas").dataset.method;
    say("explain-caption", "");
  }

  async function choose(blob, name) {
    const mine = ++generation;
    image = blob;
    bitmap = null;
    imageName = name;
    clearResults();
    say("image-status", "Reading " + name + "…");
    let decoded = null;
    try {
      decoded = await createImageBitmap(blob, {imageOrientation: "from-image"});
    } catch (err) {
      decoded = null;  // e.g. TIFF in Chromium: the server still reads it, and draws the crop for us
    }
    if (mine !== generation) return;
    bitmap = decoded;
    say("image-status", bitmap ? name + " (" + bitmap.width + "×" + bitmap.height + " px) chosen." :
      name + " chosen. This browser can't display its format, so the heatmap is drawn over the server's " +
      "picture of the model's input crop.");
    $("map-run").disabled = false;
    if (data.methods.length) $("explain-run").disabled = false;
  }

  function chooseFailed(name, message) {
    ++generation;
    image = bitmap = null;
    clearResults();
    $("map-run").disabled = true;
    if (data.methods.length) $("explain-run").disabled = true;
    say("image-status", name + ": " + message, true);
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
          try {
            const response = await fetch(ex.url);
            if (!response.ok) throw new Error(response.statusText);
            await choose(await response.blob(), ex.title);
          } catch (err) {
            chooseFailed(ex.title, err.message);
          }
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
  async function showMaps() {
    const layer = $("map-layer").value;
    say("map-caption", "Running the image up to " + layer + "…");
    const mine = generation;
    try {
      const body = await json(await fetch(api + "/feature-maps", {method: "POST", body: form({layer: layer})}));
      if (mine !== generation) return;
      maps = body;
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
      if (mine === generation) say("map-caption", err.message, true);
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

  function picture(url) {
    const img = new Image();
    img.src = url;
    return img.decode().then(() => img);
  }

  // The heatmap over the picture it was computed for: the crop of the decoded
  // upload, or the server's PNG of that crop.
  async function drawHeatmap(body, source) {
    const canvas = $("explain-canvas");
    const ctx = canvas.getContext("2d");
    const c = body.crop;
    const under = source || await picture(body.crop_png);
    ctx.globalAlpha = 1;
    if (source) ctx.drawImage(source, c.x, c.y, c.width, c.height, 0, 0, canvas.width, canvas.height);
    else ctx.drawImage(under, 0, 0, canvas.width, canvas.height);
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
    canvas.dataset.under = source ? "upload" : "server-crop";
  }

  async function explain() {
    const method = $("explain-method").value;
    const mine = generation;
    // a redrawn input (LeNet-5's digit) is no crop of the upload: draw over what the net saw
    const source = data.input_redrawn ? null : bitmap;
    say("explain-caption", "Computing " + $("explain-method").selectedOptions[0].textContent + " on " +
      imageName + "…");
    $("explain-run").disabled = true;
    try {
      const fields = {model: data.model, method: method, target: $("explain-target").value};
      if (method === "gradcam") fields.layer = $("explain-layer").value;
      if (!source) fields.crop_png = "true";
      const body = await json(await fetch("/api/explain", {method: "POST", body: form(fields)}));
      if (mine !== generation) return;
      await drawHeatmap(body, source);
      if (mine !== generation) return;
      const t = body.target;
      say("explain-caption", imageName + ": class " + t.index + " “" + t.label + "” (probability " +
        (100 * t.probability).toFixed(1) + "%)" + (body.layer ? " at " + body.layer : "") + ", " +
        (body.timing_ms / 1000).toFixed(2) + " s.");
    } catch (err) {
      if (mine === generation) say("explain-caption", err.message, true);
    } finally {
      if (image) $("explain-run").disabled = false;
    }
  }

  function showMethodHint() {
    $("explain-hint").textContent = $("explain-method").selectedOptions[0].dataset.hint;
    $("explain-layer").disabled = $("explain-method").value !== "gradcam";
  }

  $("filter-layer").addEventListener("change", showFilters);
  $("inside-file").addEventListener("change", (e) => e.target.files[0] && choose(e.target.files[0], e.target.files[0].name));
  $("map-run").addEventListener("click", showMaps);
  $("map-grid").addEventListener("click", pickChannel);
  if (data.methods.length) {
    $("explain-run").addEventListener("click", explain);
    $("explain-method").addEventListener("change", showMethodHint);
    showMethodHint();
  }
  showFilters();
  loadExamples();
})();
