"""Plotly figure dicts for /charts/accuracy: top-1 against multiply-adds with
bubbles sized by parameters (Canziani et al. 2016), accuracy per parameter,
and the ILSVRC winners by year. Points carry the model id first in
customdata, so a click can open the model page."""

from __future__ import annotations

from typing import Any

from plotly.colors import qualitative

from app.charts.schemas import AccuracyPoint, IlsvrcEntry
from app.zoo.catalog import family_choices, normalise
from app.plotting import axis, layout

FAMILY_PALETTE = qualitative.Dark24
DENSITY_BARS = 40  # the best users of their weights; the whole list is the JSON's


def family_colours(points: list[AccuracyPoint]) -> dict[str, tuple[str, str]]:
    """normalise(family) -> (its name, its colour): the spellings of one family
    (ConvNeXt, convnext) share one name and colour (app/zoo/catalog.py's family_choices)."""
    families = [name for name, _ in family_choices([p.family for p in points])]
    return {normalise(name): (name, FAMILY_PALETTE[i % len(FAMILY_PALETTE)]) for i, name in enumerate(families)}


def _custom(p: AccuracyPoint) -> list:
    return [p.id, p.name, p.params, p.macs, p.family, p.top1, p.resolution]


HOVER = ("<b>%{customdata[1]}</b> (%{customdata[4]})<br>top-1 %{customdata[5]:.2f}% at %{customdata[6]} px"
         "<br>%{customdata[3]:,} MACs at %{customdata[6]} px<br>%{customdata[2]:,} parameters<extra></extra>")


def accuracy_figure(points: list[AccuracyPoint]) -> dict[str, Any]:
    colours = family_colours(points)
    biggest = max((p.params for p in points), default=1)
    by_family: dict[str, list[AccuracyPoint]] = {}
    for p in points:
        by_family.setdefault(normalise(p.family), []).append(p)
    data = []
    for key, (family, colour) in colours.items():
        mine = by_family[key]
        data.append({  # WebGL: 1,000+ points stay smooth
            "type": "scattergl", "mode": "markers", "name": family, "meta": "models",
            "x": [p.macs for p in mine], "y": [p.top1 for p in mine], "customdata": [_custom(p) for p in mine],
            "marker": {"size": [p.params for p in mine], "sizemode": "area", "sizeref": 2 * biggest / 46 ** 2,
                       "sizemin": 4, "color": colour, "opacity": 0.75, "line": {"color": "white", "width": 1}},
            "showlegend": len(colours) <= 30,
            "hovertemplate": HOVER,
        })
    front = sorted((p for p in points if p.pareto), key=lambda p: p.macs)
    data.append({
        "type": "scatter", "mode": "lines", "name": "Pareto front", "meta": "pareto", "hoverinfo": "skip",
        "x": [p.macs for p in front], "y": [p.top1 for p in front],
        "line": {"color": "#1d2330", "dash": "dot", "width": 1.5, "shape": "hv"},
    })
    return {"data": data, "layout": layout(
        height=620,
        xaxis=axis("multiply-adds per image (MACs, log scale)<br>FLOPs = 2 × MACs", type="log"),
        yaxis=axis("ImageNet top-1 accuracy (%)"),
        legend={"orientation": "h", "y": -0.28, "x": 0, "font": {"size": 11}},
        margin={"l": 70, "r": 20, "t": 20, "b": 70},
    )}


def density_figure(points: list[AccuracyPoint]) -> dict[str, Any]:
    """Top-1 per million parameters, best at the top."""
    colours = family_colours(points)
    ordered = sorted(points, key=lambda p: p.top1_per_mparams)[-DENSITY_BARS:]
    return {"data": [{
        "type": "bar", "orientation": "h", "meta": "models", "name": "top-1 per million parameters",
        "y": [p.name for p in ordered], "x": [p.top1_per_mparams for p in ordered],
        "customdata": [_custom(p) for p in ordered], "marker": {"color": [colours[normalise(p.family)][1] for p in ordered]},
        "hovertemplate": "<b>%{customdata[1]}</b><br>%{x:.2f} top-1 % per million parameters"
                         "<br>top-1 %{customdata[5]:.2f}%<br>%{customdata[2]:,} parameters<extra></extra>",
    }], "layout": layout(
        height=16 * len(ordered) + 90, showlegend=False,
        xaxis=axis("top-1 accuracy (%) per million parameters<br>(log scale)", type="log", side="top",
                   tickvals=[0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50], ticktext=["0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "50"]),
        yaxis=axis("", tickfont={"size": 10}, automargin=True),
        margin={"l": 10, "r": 20, "t": 70, "b": 20},
    )}


def ilsvrc_figure(entries: list[IlsvrcEntry]) -> dict[str, Any]:
    """Winners' top-5 error by year (bars), their depth (line, right axis),
    the 2014 runner-up VGG, and the human reference (dashed line)."""
    winners = [e for e in entries if e.kind == "winner"]
    runners = [e for e in entries if e.kind == "runner_up"]
    deep = [e for e in winners if e.layers]
    human = next((e for e in entries if e.kind == "human"), None)
    data = [
        {"type": "bar", "name": "winner's top-5 error", "x": [e.year for e in winners],
         "y": [e.top5_error for e in winners], "text": [f"{e.top5_error:g}%" for e in winners],
         "textposition": "outside", "customdata": [e.entry for e in winners], "marker": {"color": "#2d6cdf"},
         "hovertemplate": "<b>%{customdata}</b> (%{x})<br>top-5 error %{y}%<extra></extra>"},
        {"type": "scatter", "mode": "markers", "name": "runner-up (VGG)", "x": [e.year for e in runners],
         "y": [e.top5_error for e in runners], "customdata": [e.entry for e in runners],
         "marker": {"symbol": "diamond", "size": 11, "color": "#e07b24"},
         "hovertemplate": "<b>%{customdata}</b> (%{x})<br>top-5 error %{y}%<extra></extra>"},
        {"type": "scatter", "mode": "lines+markers+text", "name": "winner's depth (layers)", "yaxis": "y2",
         "x": [e.year for e in deep], "y": [e.layers for e in deep], "text": [str(e.layers) for e in deep],
         "textposition": "top center", "customdata": [e.entry for e in deep],
         "line": {"color": "#2a9d6f"}, "marker": {"size": 8},
         "hovertemplate": "<b>%{customdata}</b> (%{x})<br>%{y} layers<extra></extra>"},
    ]
    shapes, annotations = [], []
    if human:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": human.top5_error,
                       "y1": human.top5_error, "line": {"color": "#c0392b", "dash": "dash", "width": 1.5}})
        annotations.append({"xref": "paper", "x": 1, "xanchor": "right", "y": human.top5_error, "yanchor": "bottom",
                            "showarrow": False, "text": f"human ≈ {human.top5_error:g}%",
                            "font": {"color": "#c0392b"}})
    return {"data": data, "layout": layout(
        height=440, shapes=shapes, annotations=annotations,
        xaxis=axis("ILSVRC year", dtick=1),
        yaxis=axis("top-5 error (%)", rangemode="tozero", range=[0, 32]),
        yaxis2=axis("depth (weight layers)", overlaying="y", side="right", range=[0, 200], dtick=50,
                    showgrid=False),
        legend={"orientation": "h", "y": -0.2, "x": 0}, margin={"l": 60, "r": 60, "t": 20, "b": 60},
    )}
