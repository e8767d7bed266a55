// The layer table's folding: a block row opens or closes its children; a row
// shows when every block above it is open.
(function () {
  const rows = Array.from(document.querySelectorAll("#layer-table tbody tr"));

  function refresh() {
    const stack = [];
    for (const row of rows) {
      const path = row.dataset.path;
      while (stack.length && !path.startsWith(stack[stack.length - 1].dataset.path + ".")) stack.pop();
      row.hidden = !stack.every((r) => r.dataset.open === "true");
      if (row.classList.contains("block")) stack.push(row);
    }
  }

  function setOpen(row, open) {
    row.dataset.open = open ? "true" : "false";
    const button = row.querySelector("button.toggle");
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? "▾" : "▸";
  }

  rows.filter((r) => r.classList.contains("block")).forEach((row) => {
    row.querySelector("button.toggle").addEventListener("click", () => {
      setOpen(row, row.dataset.open !== "true");
      refresh();
    });
  });
  document.getElementById("expand-all").addEventListener("click", () => {
    rows.filter((r) => r.classList.contains("block")).forEach((r) => setOpen(r, true));
    refresh();
  });
  document.getElementById("collapse-all").addEventListener("click", () => {
    rows.filter((r) => r.classList.contains("block")).forEach((r) => setOpen(r, false));
    refresh();
  });

  // Show one row: open the blocks above it, mark it, scroll to it.
  function reveal(target) {
    for (const row of rows) {
      if (row.classList.contains("block") && target.dataset.path.startsWith(row.dataset.path + ".")) setOpen(row, true);
      row.classList.toggle("target", row === target);
    }
    refresh();
    target.scrollIntoView({ block: "center" });
  }

  // A link to one row (#layer-PATH, as /lab/numbers gives them).
  function showTarget() {
    const id = decodeURIComponent(location.hash.slice(1));
    const target = id.startsWith("layer-") ? document.getElementById(id) : null;
    if (target) reveal(target);
  }
  // The graph view asks for one row by index (a module called twice has two rows of one path).
  document.getElementById("layer-table").addEventListener("reveal-row", (event) => reveal(rows[event.detail.row]));
  window.addEventListener("hashchange", showTarget);
  showTarget();

  // The lectures' figures about this model, with their verdicts (/api/lab/numbers?model=ID).
  const lecture = document.getElementById("lecture-figures");
  if (lecture) {
    const VERDICT = { exact: "exact", rounded: "rounded", other_variant: "other variant", wrong: "wrong" };
    const fmt = (n) => Number(n).toLocaleString("en-US");
    fetch(`/api/lab/numbers?model=${encodeURIComponent(lecture.dataset.model)}`, { headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : { claims: [] }))
      .then(({ claims }) => {
        // A long table of figures (the CS231n-style VGG-16 walk-through) reads as one line of counts.
        const byTopic = new Map();
        for (const c of claims) byTopic.set(c.topic, [...(byTopic.get(c.topic) || []), c]);
        const long = new Set([...byTopic].filter(([, cs]) => cs.length > 6).map(([t]) => t));
        const summaries = [...long].map((topic) => {
          const cs = byTopic.get(topic);
          const li = document.createElement("li");
          const link = document.createElement("a");
          link.href = `/lab/numbers#${cs[0].id}`;
          link.textContent = topic;
          const counts = Object.keys(VERDICT).map((v) => [v, cs.filter((c) => c.verdict === v).length]).filter(([, n]) => n);
          li.append(link, `: ${cs.length} figures, `, counts.map(([v, n]) => `${n} ${VERDICT[v]}`).join(", "));
          return li;
        });
        const items = claims.filter((c) => !long.has(c.topic)).map((c) => {
          const li = document.createElement("li");
          li.dataset.claim = c.id;
          const badge = document.createElement("span");
          badge.className = `verdict verdict-${c.verdict}`;
          badge.textContent = VERDICT[c.verdict];
          const why = document.createElement("a");
          why.href = `/lab/numbers#${c.id}`;
          why.textContent = "why";
          li.append(`${c.source}: “${c.claim}” — computed ${fmt(c.computed)} ${c.unit} `, badge, " ", why);
          return li;
        });
        lecture.querySelector('[data-slot="claims"]').replaceChildren(...items, ...summaries);
        lecture.hidden = claims.length === 0;
      })
      .catch(() => { lecture.hidden = true; });
  }
})();

// "Fetch weights": start the download on the server and follow its progress.
(function () {
  const box = document.getElementById("weights-fetch");
  if (!box) return;
  const button = document.getElementById("fetch-weights");
  const bar = document.getElementById("fetch-progress");
  const message = document.getElementById("fetch-message");
  const badge = document.querySelector("#card .badge");
  const mb = (n) => (n / 1e6).toFixed(1);

  function show(job) {
    if (job.fraction !== null) { bar.value = job.fraction; } else { bar.removeAttribute("value"); }
    if (job.status === "done") {
      bar.value = 1;
      message.textContent = "Weights fetched: this model can predict now.";
      badge.textContent = job.weights;
      badge.className = `badge weights-${job.weights}`;
      button.hidden = true;
    } else if (job.status === "failed") {
      message.textContent = job.error;
      button.disabled = false;
    } else {
      message.textContent = job.total_bytes ? `${mb(job.received_bytes)} of ${mb(job.total_bytes)} MB`
        : `${mb(job.received_bytes)} MB`;
    }
  }

  async function follow(url) {
    while (true) {
      const response = await fetch(url);
      const job = await response.json();
      if (!response.ok) { message.textContent = job.error.message; button.disabled = false; return; }
      show(job);
      if (job.status === "done" || job.status === "failed") return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    message.textContent = "Starting…";
    const response = await fetch(`/api/models/${box.dataset.model}/weights/fetch`, { method: "POST" });
    const body = await response.json();
    if (!response.ok) {
      message.textContent = body.error.message;
      button.disabled = false;
      return;
    }
    bar.hidden = false;
    show(body);
    if (body.status !== "done") follow(response.headers.get("Location"));
  });
})();
