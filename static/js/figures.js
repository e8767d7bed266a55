// Draws each Plotly figure built by the server: <div data-figure="ID"> reads
// its figure from <script type="application/json" id="ID">. A div with
// data-click-model opens the model page of the point clicked (customdata[0]).
(function () {
  document.querySelectorAll("[data-figure]").forEach((el) => {
    const fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    // A fixed height: on resize, autosize then re-reads the same height from the div.
    if (fig.layout.height) el.style.height = fig.layout.height + "px";
    Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false}).then(() => {
      el.dataset.ready = "1";
    });
    if ("clickModel" in el.dataset) {
      el.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        if (point && point.customdata) window.location.href = "/models/" + encodeURIComponent(point.customdata[0]);
      });
    }
  });
})();
