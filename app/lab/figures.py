"""Plotly figure dicts for the lab, drawn by the local plotly.js. They take plain
data (lists of dicts, as ``model_dump()`` gives them), so the lessons that call
them and these builders never import each other."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]

_LAYOUT = {"margin": {"l": 70, "r": 20, "t": 30, "b": 50}, "height": 340,
           "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}, "font": {"size": 13}}


def bottleneck_figure(naive: list[Row], reduced: list[Row]) -> dict[str, Any]:
    """Multiply-adds per branch (rows with ``name``, ``macs``, ``weights``), the naive
    module beside the one with 1x1 reductions."""
    def trace(branches: list[Row], name: str, color: str) -> dict[str, Any]:
        return {"type": "bar", "name": name, "marker": {"color": color},
                "x": [b["name"] for b in branches], "y": [b["macs"] for b in branches],
                "customdata": [b["weights"] for b in branches],
                "hovertemplate": "%{x}: %{y:,} MACs, %{customdata:,} weights<extra>" + name + "</extra>"}

    return {
        "data": [trace(naive, "naive", "#c8553d"), trace(reduced, "with 1x1 reductions", "#2d6cdf")],
        "layout": {**_LAYOUT, "barmode": "group",
                   "xaxis": {"title": {"text": "branch"}},
                   "yaxis": {"title": {"text": "multiply-adds (MACs)"}, "rangemode": "tozero", "exponentformat": "SI"}},
    }


def mobilenet_figure(cells: list[Row]) -> dict[str, Any]:
    """MobileNet v1's multiply-adds against input resolution, one line per width multiplier
    (cells with ``multiplier``, ``resolution``, ``macs``, ``params``)."""
    multipliers = sorted({c["multiplier"] for c in cells}, reverse=True)
    data = []
    for m in multipliers:
        row = sorted((c for c in cells if c["multiplier"] == m), key=lambda c: c["resolution"])
        data.append({"type": "scatter", "mode": "lines+markers", "name": f"width {m}",
                     "x": [c["resolution"] for c in row], "y": [c["macs"] for c in row],
                     "customdata": [c["params"] for c in row],
                     "hovertemplate": f"%{{x}} px: %{{y:,}} MACs, %{{customdata:,}} params<extra>width {m}</extra>"})
    return {
        "data": data,
        "layout": {**_LAYOUT, "xaxis": {"title": {"text": "input resolution (pixels per side)"},
                                        "tickvals": sorted({c["resolution"] for c in cells})},
                   "yaxis": {"title": {"text": "multiply-adds (MACs)"}, "rangemode": "tozero", "exponentformat": "SI"}},
    }


def growth_figure(name: str, input_size: int, points: list[Row]) -> dict[str, Any]:
    """Receptive field and jump after each layer that changes them (rows with ``path``,
    ``type``, ``receptive_field``, ``jump``), against the input's side."""
    x = list(range(1, len(points) + 1))
    text = [f"{p['path']} ({p['type']})" for p in points]
    return {
        "data": [
            {"type": "scatter", "mode": "lines+markers", "name": "receptive field", "x": x,
             "y": [p["receptive_field"] for p in points], "text": text,
             "hovertemplate": "%{text}<br>receptive field %{y} px<extra></extra>"},
            {"type": "scatter", "mode": "lines+markers", "name": "jump", "x": x, "y": [p["jump"] for p in points],
             "text": text, "hovertemplate": "%{text}<br>jump %{y} px<extra></extra>"},
            {"type": "scatter", "mode": "lines", "name": f"input side ({input_size} px)",
             "x": [x[0], x[-1]] if x else [], "y": [input_size, input_size] if x else [],
             "line": {"dash": "dot", "color": "#888"}, "hoverinfo": "skip"},
        ],
        "layout": {**_LAYOUT, "xaxis": {"title": {"text": f"layers of {name} that widen the view (execution order)"}},
                   "yaxis": {"title": {"text": "input pixels"}, "rangemode": "tozero"}},
    }
