// The /custom page: an ONNX upload by drag and drop (then on to its model page),
// and a Sequential text box whose per-layer table follows the text as it is typed.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const thousands = (n) => n.toLocaleString("en-US");

  async function errorMessage(response) {
    try {
      const body = await response.json();
      return body.error ? body.error.message : response.statusText;
    } catch (e) {
      return response.statusText;
    }
  }

  // --- ONNX upload ---------------------------------------------------------------------------
  const zone = $("drop-zone"), fileInput = $("onnx-file"), onnxStatus = $("onnx-status");

  async function upload(file) {
    const form = new FormData();
    form.append("file", file);
    const resolution = $("onnx-resolution").value;
    if (resolution) form.append("resolution", resolution);
    onnxStatus.textContent = `Analysing ${file.name} …`;
    onnxStatus.classList.remove("error");
    const response = await fetch("/api/custom/onnx", {method: "POST", body: form});
    if (!response.ok) {
      onnxStatus.textContent = await errorMessage(response);
      onnxStatus.classList.add("error");
      return;
    }
    const card = await response.json();
    onnxStatus.textContent = `${card.name}: ${thousands(card.macs)} MACs. Opening its page …`;
    window.location.assign(card.url);
  }

  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
  zone.addEventListener("keydown", (event) => {  // the zone is focusable: Enter or Space opens the file chooser
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); fileInput.click(); }
  });
  fileInput.addEventListener("change", () => { if (fileInput.files.length) upload(fileInput.files[0]); });

  // --- Sequential ----------------------------------------------------------------------------
  const code = $("seq-code"), seqStatus = $("seq-status"), tbody = document.querySelector("#seq-table tbody");
  let timer = null, latest = 0;

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function render(data) {
    tbody.replaceChildren();
    for (const layer of data.layers) {
      if (!layer.is_leaf) continue;
      const tr = document.createElement("tr");
      tr.dataset.path = layer.path;
      tr.append(cell(layer.path), cell(layer.type),
        cell(layer.output_shape ? layer.output_shape.slice(1).join("×") : "—", "shape"),
        cell(thousands(layer.params), "num"), cell(thousands(layer.macs), "num"),
        cell(layer.receptive_field ? `${layer.receptive_field} · ${layer.jump}` : "", "num"));
      const formulas = cell("", "formulas");
      for (const f of layer.formulas) {
        const div = document.createElement("div");
        div.className = "formula";
        div.dataset.kind = f.kind;
        div.textContent = `${f.label} ${f.expression}`;
        formulas.append(div);
      }
      tr.append(formulas);
      tbody.append(tr);
    }
    $("seq-totals").innerHTML = "";
    const link = document.createElement("a");
    link.href = data.url;
    link.textContent = "its model page";
    $("seq-totals").append(`Total: ${thousands(data.totals.params)} parameters, ${thousands(data.totals.macs)} MACs · `, link);
  }

  async function analyse() {
    const request = ++latest;
    const body = {code: code.value, input: ["seq-c", "seq-h", "seq-w"].map((id) => Number($(id).value))};
    const response = await fetch("/api/custom/sequential", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    if (request !== latest) return;  // a newer keystroke is on its way
    if (!response.ok) {
      seqStatus.textContent = await errorMessage(response);
      seqStatus.classList.add("error");
      return;
    }
    seqStatus.textContent = "";
    seqStatus.classList.remove("error");
    render(await response.json());
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(analyse, 250);
  }

  code.addEventListener("input", schedule);
  for (const id of ["seq-c", "seq-h", "seq-w"]) $(id).addEventListener("input", schedule);
  for (const button of document.querySelectorAll("button.preset")) {
    button.addEventListener("click", () => {
      code.value = button.dataset.code;
      JSON.parse(button.dataset.input).forEach((v, i) => { $(["seq-c", "seq-h", "seq-w"][i]).value = v; });
      analyse();
    });
  }
  analyse();
})();
