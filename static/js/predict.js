// The /predict page: pick or drop an image (or an example), POST it to
// /api/predict, draw the answer into the figure built in Python.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("predict-data").textContent);
  const figure = JSON.parse(document.getElementById("predict-figure").textContent);
  const names = Object.fromEntries(data.models.map((m) => [m.id, m.name]));
  const byId = Object.fromEntries(data.models.map((m) => [m.id, m]));
  const $ = (id) => document.getElementById(id);
  let current = null;  // the Blob being shown
  let run = 0;  // the latest request: an older answer arriving late is dropped

  // A result never stays beside input it was not computed from: cleared when
  // the image or model changes, and again when the new request fails.
  function clearResult() {
    const chart = $("chart-main");
    Plotly.purge(chart);
    delete chart.dataset.model;
    delete chart.dataset.top1;
    $("timing").textContent = "";
    $("notes").replaceChildren();
    $("notes").hidden = true;
    $("compare-grid").replaceChildren();
  }

  // Why a top-5 says little about this image (blank, one colour, a 1-pixel strip), as the server found.
  function showNotes(notes) {
    $("notes").replaceChildren(...(notes || []).map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    $("notes").hidden = !(notes && notes.length);
  }

  function draw(target, body) {
    const fig = JSON.parse(JSON.stringify(figure));
    const trace = fig.data[0];
    trace.y = body.predictions.map((p) => p.label);
    trace.x = body.predictions.map((p) => p.probability);
    trace.text = body.predictions.map((p) => (100 * p.probability).toFixed(1) + "%");
    fig.layout.title.text = names[body.model] || body.model;
    Plotly.react(target, fig.data, fig.layout, fig.config);
    target.dataset.model = body.model;
    target.dataset.top1 = body.predictions[0].label;
  }

  async function predict(model) {
    const form = new FormData();
    form.append("file", current, "upload");
    form.append("model", model);
    form.append("topk", String(data.default_topk));
    const response = await fetch("/api/predict", {method: "POST", body: form});
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    return body;
  }

  // What a first prediction with the chosen model will cost, from the page's data.
  function showModelState() {
    const m = byId[$("model-select").value];
    const hint = $("model-state");
    hint.dataset.state = m ? m.state : "";
    if (!m || m.state === "ready") hint.textContent = "";
    else if (m.state === "preparing") hint.textContent = "Being prepared now: " + m.preparing_stage + ".";
    else if (m.export_cached === false) {
      hint.textContent = "Not loaded yet: its first prediction prepares it (export to ONNX Runtime and a check " +
        "against PyTorch, about a minute on a small CPU); later ones take milliseconds.";
    } else hint.textContent = "Not loaded yet: its first prediction loads it (seconds).";
  }

  // While an answer is pending, say so when the model is being prepared (a first ONNX export takes a minute).
  function watchPreparation(model, mine) {
    let timer = null;
    async function poll() {
      try {
        const worker = await (await fetch("/api/predict/worker")).json();
        if (mine !== run || timer === null) return;
        const prep = worker.preparing.find((p) => p.model === model);
        if (prep) {
          $("status").textContent = "Preparing " + names[model] + " for its first prediction: " + prep.stage +
            " (" + Math.round(prep.seconds) + " s so far). Later predictions take milliseconds.";
          $("status").dataset.state = "preparing";
        }
      } catch (err) { /* the prediction's own answer reports failures */ }
      if (timer !== null) timer = setTimeout(poll, 1000);
    }
    timer = setTimeout(poll, 400);
    return () => { clearTimeout(timer); timer = null; delete $("status").dataset.state; };
  }

  async function runMain() {
    if (!current) return;
    const model = $("model-select").value;
    const mine = ++run;
    clearResult();
    $("status").textContent = "Predicting with " + names[model] + "…";
    $("status").classList.remove("error");
    const stopWatching = watchPreparation(model, mine);
    try {
      const body = await predict(model);
      stopWatching();
      byId[model].state = "ready";
      showModelState();
      if (mine !== run) return;
      draw($("chart-main"), body);
      showNotes(body.notes);
      const t = body.timing_ms;
      $("status").textContent = "Top-" + body.predictions.length + " of " + names[model] + ":";
      $("timing").textContent = "preprocess " + t.preprocess.toFixed(1) + " ms, inference " +
        t.inference.toFixed(1) + " ms (batch of " + body.batch_size + ") on " + body.device + " (" +
        body.runtime + "), total " + t.total.toFixed(1) + " ms" +
        (body.prepare_ms > 0 ? ", of which " + (body.prepare_ms / 1000).toFixed(1) + " s preparing the model (first use)" : "");
    } catch (err) {
      stopWatching();
      if (mine !== run) return;
      clearResult();
      $("status").textContent = err.message;
      $("status").classList.add("error");
    }
  }

  async function runCompare() {
    if (!current) return;
    const grid = $("compare-grid");
    grid.replaceChildren();
    grid.classList.remove("stale");
    const models = [...document.querySelectorAll("#compare-pick input:checked")].map((el) => el.value);
    await Promise.all(models.map(async (model) => {
      const cell = document.createElement("div");
      cell.className = "chart compare-cell";
      grid.appendChild(cell);
      try {
        draw(cell, await predict(model));
      } catch (err) {
        cell.textContent = names[model] + ": " + err.message;
        cell.classList.add("error");
      }
    }));
  }

  function show(blob) {
    current = blob;
    clearResult();
    const preview = $("preview");
    if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    $("compare-run").disabled = false;
    runMain();
  }

  $("file-input").addEventListener("change", (e) => e.target.files[0] && show(e.target.files[0]));
  $("model-select").addEventListener("change", () => { showModelState(); runMain(); });
  showModelState();
  $("compare-run").addEventListener("click", runCompare);
  // Ticks changed: the side-by-side results are for the old set until run again.
  $("compare-pick").addEventListener("change", () => $("compare-grid").classList.add("stale"));
  const zone = $("dropzone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files[0]) show(e.dataTransfer.files[0]);
  });
  document.querySelectorAll(".example").forEach((button) => button.addEventListener("click", async () => {
    const response = await fetch(button.dataset.url);
    show(await response.blob());
  }));
})();
