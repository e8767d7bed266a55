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
  // The graph view asks for a row to be shown: open every block above it.
  document.getElementById("layer-table").addEventListener("reveal-row", (event) => {
    const path = rows[event.detail.row].dataset.path;
    rows.filter((r) => r.classList.contains("block") && path.startsWith(r.dataset.path + ".")).forEach((r) => setOpen(r, true));
    refresh();
  });
  document.getElementById("expand-all").addEventListener("click", () => {
    rows.filter((r) => r.classList.contains("block")).forEach((r) => setOpen(r, true));
    refresh();
  });
  document.getElementById("collapse-all").addEventListener("click", () => {
    rows.filter((r) => r.classList.contains("block")).forEach((r) => setOpen(r, false));
    refresh();
  });
})();
