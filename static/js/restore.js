// Back and Forward may bring a page back with its form controls as the reader
// left them, unsubmitted, while the page shows what its address asked for.
// A form marked data-server-state is put back to the values it was rendered
// with, so what the controls say is what the page acts on.
"use strict";
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-server-state]").forEach((form) => form.reset());
});
