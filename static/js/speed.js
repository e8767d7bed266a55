// Measured speed: start measurement jobs, follow their progress by polling
// GET /api/jobs/{id}, cancel them, and draw the server-built Plotly figures.
// Serves the /speed page ([data-speed-page]) and any model speed section
// ([data-speed-model], templates/_model_speed.html).
(function () {
  "use strict";
  if (window.ConvZooSpeed) return; // the page and a section may both load this file
  const POLL_MS = 400;
  const ENDED = ["done", "failed", "cancelled"];
  const PLOT_CONFIG = { responsive: true, displaylogo: false };

  async function call(method, url, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    const data = await response.json().catch(() => ({}));
    return { status: response.status, data };
  }

  function errorText(data) {
    return (data && data.error && data.error.message) || "The server refused the request.";
  }

  function readOptions(form) {
    const body = {};
    const batches = form.querySelector("[name=batch_sizes]").value.trim();
    if (batches) body.batch_sizes = batches.split(",").map((s) => Number(s.trim()));
    const resolution = form.querySelector("[name=resolution]").value;
    if (resolution) body.resolution = Number(resolution);
    body.dtype = form.querySelector("[name=dtype]").value;
    body.channels_last = form.querySelector("[name=channels_last]").checked;
    body.runtime = form.querySelector("[name=runtime]").value;
    const repeats = form.querySelector("[name=repeats]").value;
    if (repeats) body.repeats = Number(repeats);
    const budget = form.querySelector("[name=time_budget_s]").value;
    if (budget) body.time_budget_s = Number(budget);
    return body;
  }

  // One progress bar, its label, its cancel button and a message line.
  class Progress {
    constructor(root) {
      this.box = root.querySelector(".speed-progress");
      this.bar = this.box.querySelector(".speed-bar");
      this.label = this.box.querySelector(".speed-label");
      this.message = root.querySelector(".speed-message");
      this.cancelButton = this.box.querySelector(".speed-cancel");
      this.job = null;
      this.cancelButton.addEventListener("click", () => {
        if (this.job) call("POST", `/api/jobs/${this.job.id}/cancel`);
      });
    }
    show(job) {
      this.job = job;
      const p = job.progress;
      const percent = Math.round(100 * p.fraction);
      this.box.hidden = false;
      this.bar.firstElementChild.style.width = `${percent}%`;
      this.bar.setAttribute("aria-valuenow", String(percent));
      const where = p.model_count > 1 ? `model ${p.model_index} of ${p.model_count}: ` : "";
      const batch = p.batch_size ? `, batch ${p.batch_size}` : "";
      this.label.textContent = `${job.status}: ${where}${p.current_model || job.models[0]}${batch} (${percent}%)`;
      this.cancelButton.disabled = ENDED.includes(job.status);
    }
    say(text) {
      this.message.hidden = !text;
      this.message.textContent = text || "";
    }
  }

  // Poll a job until it ends; onUpdate(job) on every answer.
  async function follow(jobId, onUpdate) {
    for (;;) {
      const { status, data } = await call("GET", `/api/jobs/${jobId}`);
      if (status !== 200) throw new Error(errorText(data));
      onUpdate(data);
      if (ENDED.includes(data.status)) return data;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  function setBusy(root, busy) {
    root.querySelectorAll(".speed-measure, .speed-measure-all").forEach((b) => { b.disabled = busy; });
  }

  // Start a job (or join the one already running: 409) and follow it to its end.
  async function run(root, progress, url, body) {
    progress.say("");
    setBusy(root, true);
    try {
      let { status, data } = await call("POST", url, body);
      if (status === 409) {
        progress.say(errorText(data) + " Following it here.");
        const list = await call("GET", "/api/jobs");
        if (!list.data.running) return null;
        data = { id: list.data.running };
      } else if (status !== 202) {
        progress.say(errorText(data));
        return null;
      }
      const job = await follow(data.id, (j) => progress.show(j));
      if (job.status === "failed") progress.say(`Measurement failed: ${job.error}`);
      if (job.status === "cancelled") progress.say("Cancelled; models measured before stayed saved.");
      return job;
    } finally {
      setBusy(root, false);
    }
  }

  async function resume(root, progress, onEnd) {
    const { data } = await call("GET", "/api/jobs");
    if (!data.running) return;
    setBusy(root, true);
    const job = await follow(data.running, (j) => progress.show(j));
    setBusy(root, false);
    onEnd(job);
  }

  // The runtimes measured for one model, side by side (batch 1 and best throughput).
  function showRuntimes(table, runtimes) {
    if (!table) return;
    table.hidden = !runtimes.length;
    const body = table.querySelector("tbody");
    body.replaceChildren(...runtimes.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.variant = r.variant;
      for (const text of [r.label, r.latency_ms === null ? "—" : r.latency_ms.toFixed(2),
        `${r.best_images_per_s.toFixed(1)} @ ${r.best_batch_size}`,
        r.vs_eager === null ? "—" : `${r.vs_eager.toFixed(2)}×`]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
  }

  // A model's section: its figure, runtimes table, measure button and progress.
  function initModel(root) {
    const modelId = root.dataset.speedModel;
    const status = root.querySelector(".speed-status");
    const figure = root.querySelector(".speed-figure");
    const progress = new Progress(root);

    async function draw() {
      const { status: code, data } = await call("GET", `/api/models/${modelId}/speed/figure`);
      if (code !== 200) {
        status.textContent = errorText(data);
      } else if (!data.measured) {
        status.textContent = "Not measured on this machine yet: press Measure.";
      } else {
        status.hidden = true;
        Plotly.react(figure, data.figure.data, data.figure.layout, PLOT_CONFIG);
        showRuntimes(root.querySelector(".speed-runtimes"), data.runtimes);
      }
    }

    root.querySelector(".speed-measure").addEventListener("click", async () => {
      await run(root, progress, `/api/models/${modelId}/speed`, readOptions(root.querySelector("form")));
      await draw();
    });
    draw();
    resume(root, progress, draw);
  }

  // The /speed page: charts, budget answer, per-model and measure-all buttons.
  function initPage(root) {
    const figures = JSON.parse(document.getElementById("speed-figures").textContent);
    const rows = JSON.parse(document.getElementById("speed-data").textContent).rows.filter((r) => r.fastest_ms);
    for (const [name, fig] of Object.entries(figures)) {
      const el = document.getElementById(`speed-${name}`);
      if (el) Plotly.newPlot(el, fig.data, fig.layout, PLOT_CONFIG);
    }
    const form = root.querySelector(".speed-controls");
    const progress = new Progress(root);
    const reloadIfMeasured = (job) => {
      if (job && job.outcomes.some((o) => o.status === "measured")) window.location.reload();
    };

    root.querySelectorAll(".speed-table .speed-measure").forEach((button) => {
      button.addEventListener("click", async () => {
        reloadIfMeasured(await run(root, progress, `/api/models/${button.dataset.model}/speed`, readOptions(form)));
      });
    });
    root.querySelector(".speed-measure-all").addEventListener("click", async () => {
      reloadIfMeasured(await run(root, progress, "/api/speed/measure-all",
        { ...readOptions(form), skip_measured: true }));
    });

    // The budget answer, recomputed here as the reader types (the server computes the same from ?budget_ms=).
    const budget = root.querySelector(".speed-budget input[name=budget_ms]");
    const best = root.querySelector(".speed-best");
    if (budget) {
      budget.addEventListener("input", () => {
        const ms = Number(budget.value);
        if (!(ms > 0)) { best.textContent = "Type a budget above 0 ms."; return; }
        // Each model on its fastest measured runtime (server: app/speed/data.py best_under).
        const fitting = rows.filter((r) => r.top1 !== null && r.fastest_ms <= ms);
        const top = fitting.reduce((a, r) => (!a || r.top1 > a.top1 || (r.top1 === a.top1 && r.fastest_ms < a.fastest_ms) ? r : a), null);
        best.textContent = top
          ? `Within ${ms} ms: ${top.name} on ${top.fastest_runtime}, top-1 ${top.top1}%, ${top.fastest_ms.toFixed(2)} ms (${fitting.length} measured models fit).`
          : `No measured model with a known top-1 runs within ${ms} ms.`;
        root.querySelectorAll(".speed-frontier tr[data-id]").forEach((tr) => {
          tr.classList.toggle("best", top !== null && tr.dataset.id === top.id);
        });
      });
      budget.dispatchEvent(new Event("input"));
    }
    resume(root, progress, reloadIfMeasured);
  }

  function init() {
    document.querySelectorAll("[data-speed-page]").forEach(initPage);
    document.querySelectorAll("[data-speed-model]").forEach(initModel);
  }

  window.ConvZooSpeed = { init };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
