// The catalog: filters and sort live in the address (the server filters, sorts and pages);
// the ticked models do too (?selected=), so Back shows and compares the same ones.
(function () {
  const form = document.getElementById("catalog-filters");
  const selectedField = document.getElementById("selected-field");
  const MAX = 6;

  // Changing a filter applies it at once (the Apply button stays for keyboards and no-script).
  form.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => form.requestSubmit()));
  form.addEventListener("submit", () => {  // empty fields out of the address
    form.querySelectorAll("input, select").forEach((el) => { if (!el.value) el.disabled = true; });
  });

  function selection() {
    const params = new URLSearchParams(location.search);
    return (params.get("selected") || "").split(",").filter(Boolean);
  }

  function show(ids) {
    const known = document.getElementById("selected-names");
    const names = JSON.parse(known.dataset.names || "{}");  // the server names ticks made on other pages
    document.querySelectorAll("input.pick").forEach((box) => {
      box.checked = ids.includes(box.value);
      box.disabled = !box.checked && ids.length >= MAX;
      names[box.value] = box.dataset.name;
    });
    known.textContent = ids.map((id) => names[id] || id).join(", ");
    known.dataset.names = JSON.stringify(names);
    document.getElementById("selection").hidden = ids.length === 0;
    document.getElementById("selected-count").textContent = ids.length;
    document.getElementById("compare-selected").href = "/compare?models=" + ids.join(",");
    selectedField.value = ids.join(",");
    // Sort and page links keep the selection.
    document.querySelectorAll("a.sort, .pager a").forEach((a) => {
      const url = new URL(a.href);
      if (ids.length) url.searchParams.set("selected", ids.join(",")); else url.searchParams.delete("selected");
      a.href = url.pathname + url.search;
    });
  }

  function save(ids) {
    const url = new URL(location.href);
    if (ids.length) url.searchParams.set("selected", ids.join(",")); else url.searchParams.delete("selected");
    history.replaceState(null, "", url.pathname + url.search);
    show(ids);
  }

  document.querySelectorAll("input.pick").forEach((box) => box.addEventListener("change", () => {
    const ids = selection().filter((id) => id !== box.value);
    if (box.checked && ids.length < MAX) ids.push(box.value);
    save(ids);
  }));
  // The address is the truth: after Back (or a restored page) the boxes follow it.
  window.addEventListener("pageshow", () => show(selection()));
  show(selection());
})();
