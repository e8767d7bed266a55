// The catalog table: search box, family chips and sortable columns, all client-side.
(function () {
  const table = document.getElementById("catalog");
  const body = table.tBodies[0];
  const search = document.getElementById("catalog-search");
  const chips = document.querySelectorAll("#family-chips .chip");
  const count = document.getElementById("catalog-count");
  let family = "";

  function filter() {
    const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of body.rows) {
      const ok = (!family || row.dataset.family === family) &&
        words.every((w) => row.dataset.search.includes(w));
      row.hidden = !ok;
      if (ok) shown += 1;
    }
    count.textContent = shown;
  }

  search.addEventListener("input", filter);
  chips.forEach((chip) => chip.addEventListener("click", () => {
    family = chip.dataset.family;
    chips.forEach((c) => c.classList.toggle("active", c === chip));
    filter();
  }));

  table.querySelectorAll("button.sort").forEach((button) => button.addEventListener("click", () => {
    const col = Number(button.dataset.col);
    const numeric = button.dataset.type === "num";
    // aria-sort belongs on the column header, where screen readers announce it.
    const ascending = button.closest("th").getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th[aria-sort]").forEach((th) => th.removeAttribute("aria-sort"));
    button.closest("th").setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const key = (row) => row.cells[col].dataset.value;
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === "" || y === "") return (x === "") - (y === "");  // unknown values last
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
  }));
  // Tick up to six models, then compare them.
  const picks = table.querySelectorAll("input.pick");
  const compare = document.getElementById("compare-selected");
  const picked = [];
  picks.forEach((box) => box.addEventListener("change", () => {
    if (box.checked) picked.push(box.value);
    else picked.splice(picked.indexOf(box.value), 1);
    picks.forEach((b) => { b.disabled = !b.checked && picked.length >= 6; });
    compare.hidden = picked.length === 0;
    compare.href = "/compare?models=" + picked.join(",");
    document.getElementById("selected-count").textContent = picked.length;
  }));
  filter();
})();
