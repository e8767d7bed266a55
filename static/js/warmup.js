// The catalog while the start-up analysis runs: follows its progress through
// /api/health and reloads the page once it is done, so every card shows its numbers.
(function () {
  const bar = document.getElementById("warmup-progress");
  const done = document.getElementById("warmup-done");
  const current = document.getElementById("warmup-current");
  async function poll() {
    try {
      const health = await (await fetch("/api/health")).json();
      const w = health.warmup;
      bar.value = w.done;
      done.textContent = w.done;
      current.textContent = w.current ? " — now " + w.current : "";
      if (!w.running) { window.location.reload(); return; }
    } catch (err) { /* the server may be restarting: try again */ }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
