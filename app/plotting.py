"""The look every feature's Plotly figures share: built in Python as plain
dicts, drawn by the local static/plotly.min.js."""

from __future__ import annotations

from typing import Any

GRID = "#e3e6ee"


def layout(**overrides: Any) -> dict[str, Any]:
    """Shared look: white, light grid, room for axis titles, resizes with the page."""
    base = {
        "autosize": True, "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "closest",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#1d2330"},
        "margin": {"l": 70, "r": 20, "t": 30, "b": 50},
        "legend": {"orientation": "h", "y": -0.12, "x": 0},
    }
    base.update(overrides)
    return base


def axis(title: str, **extra: Any) -> dict[str, Any]:
    # SI prefixes on ticks (15G, not Plotly's default 15B): the same convention as the text and tables.
    return {"title": {"text": title}, "gridcolor": GRID, "zeroline": False, "automargin": True,
            "exponentformat": "SI", **extra}
