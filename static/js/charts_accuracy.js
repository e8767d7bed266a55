// The accuracy chart's filters: a choice applies at once, and the address keeps it (empty choices left out).
(function () {
  const form = document.getElementById("chart-filters");
  form.addEventListener("submit", () => form.querySelectorAll("select").forEach((el) => { el.disabled = !el.value; }));
  form.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => form.requestSubmit()));
})();
