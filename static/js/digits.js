// Draw-a-digit on a greyscale model's page: while you draw, the drawing is
// POSTed to /api/predict (its top-5) and to .../feature-maps (the chosen
// layer's channels), at most one round in flight, the last drawing winning.
// Clear aborts the round in flight, and an answer for a cleared drawing is
// dropped: each drawing has its own ticket.
(function () {
  "use strict";
  const pad = document.getElementById("digit-pad");
  if (!pad) return;
  const model = pad.dataset.model;
  const $ = (id) => document.getElementById(id);
  const canvas = $("digit-canvas");
  const ctx = canvas.getContext("2d");
  let drawing = false;
  let round = null;  // the AbortController of the round in flight
  let ticket = 0;  // bumped by Clear: answers under an older ticket are for a drawing that is gone
  let again = false;
  let timer = null;
  let strokes = 0;

  function clear() {
    ticket += 1;
    if (round) round.abort();
    again = false;
    clearTimeout(timer);
    timer = null;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    strokes = 0;
    $("digit-top5").replaceChildren();
    $("digit-maps").hidden = true;
    $("digit-map-caption").textContent = "";
    $("digit-status").textContent = "Draw a digit.";
    delete pad.dataset.top1;
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  }

  async function post(url, fields, blob, signal) {
    const form = new FormData();
    form.append("file", blob, "digit.png");
    for (const [key, value] of Object.entries(fields)) form.append(key, value);
    const response = await fetch(url, {method: "POST", body: form, signal: signal});
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    return body;
  }

  function showTop5(body) {
    $("digit-top5").replaceChildren(...body.predictions.map((p) => {
      const item = document.createElement("li");
      item.dataset.label = p.label;
      item.innerHTML = "<strong></strong> <span class=\"bar\"></span> <span class=\"pct\"></span>";
      item.querySelector("strong").textContent = p.label;
      item.querySelector(".bar").style.width = (8 * p.probability).toFixed(2) + "rem";
      item.querySelector(".pct").textContent = (100 * p.probability).toFixed(1) + "%";
      return item;
    }));
    $("digit-status").textContent = "It reads " + body.predictions[0].label + ".";
    pad.dataset.top1 = body.predictions[0].label;
  }

  function showMaps(body) {
    $("digit-maps").src = body.png;
    $("digit-maps").hidden = false;
    $("digit-maps").style.width = body.grid.width * Math.max(1, Math.floor(32 / body.grid.tile_width)) + "px";
    $("digit-map-caption").textContent = body.layer + ": " + body.shape[0] + " channels of " + body.shape[1] + "×" +
      body.shape[2] + (body.receptive_field ? "; one cell sees " + body.receptive_field + "×" +
      body.receptive_field + " input pixels" : "");
  }

  function send() {
    timer = null;
    if (!strokes) return;
    if (round) { again = true; return; }
    const controller = new AbortController();
    const mine = ticket;
    round = controller;
    if (!pad.dataset.top1) $("digit-status").textContent = "Reading the drawing…";
    canvas.toBlob(async (blob) => {
      try {
        const [top5, maps] = await Promise.all([
          post("/api/predict", {model: model, topk: "5"}, blob, controller.signal),
          post("/api/models/" + encodeURIComponent(model) + "/feature-maps", {layer: $("digit-layer").value}, blob,
            controller.signal),
        ]);
        if (mine !== ticket) return;
        showTop5(top5);
        showMaps(maps);
      } catch (err) {
        if (mine === ticket) $("digit-status").textContent = err.message;
      } finally {
        if (round === controller) round = null;
        if (again) { again = false; send(); }
      }
    }, "image/png");
  }

  function soon() {
    if (!timer) timer = setTimeout(send, 250);
  }

  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 16;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...point(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    ctx.lineTo(...point(event));
    ctx.stroke();
    strokes += 1;
    soon();
  });
  canvas.addEventListener("pointerup", () => { drawing = false; send(); });
  $("digit-clear").addEventListener("click", clear);
  $("digit-layer").addEventListener("change", send);
  clear();
})();
