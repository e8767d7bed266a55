"""Plotly figure dicts for the model and compare pages, built from page data
and nothing else; static/plotly.min.js draws them. Every axis names its unit."""

from __future__ import annotations

import math
from typing import Any

from plotly.colors import qualitative

from app.plotting import axis, layout
from app.zoo.formulas import ADAPTIVE_POOLS, CONVS, LINEARS, POOLS
from app.zoo.layer_stats import HEAD, TableRow
from app.zoo.schemas import CompareItem, Layer

PALETTE = qualitative.Plotly  # one colour per compared model
COLOURS = {"params": "#2d6cdf", "macs": "#e07b24", "activations": "#2a9d6f", "pool": "#9aa3b5"}


# Below the plot, clear of the buttons above it however many lines the names wrap to on a phone.
LEGEND_BELOW = {"orientation": "h", "x": 0, "y": -0.1, "yanchor": "top"}


def log_toggle(axes: list[str]) -> list[dict[str, Any]]:
    """Buttons that switch the given y axes between linear and log scale:
    one model's bars can dwarf another's."""
    def args(kind: str) -> dict[str, str]:
        return {f"{a}.type": kind for a in axes}
    # Top left: Plotly's own controls (the modebar) take the top right, the legend sits below the plot.
    return [{"type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom",
             "showactive": True, "pad": {"r": 0, "t": 0}, "font": {"size": 11},
             "buttons": [{"label": "linear", "method": "relayout", "args": [args("linear")]},
                         {"label": "log", "method": "relayout", "args": [args("log")]}]}]


def _shape_text(shape: list[int] | None) -> str:
    return "×".join(map(str, shape[1:])) if shape else "—"


def layer_costs_figure(layers: list[Layer], bytes_per_element: int) -> dict[str, Any]:
    """Parameters, MACs and activation memory of each leaf layer along the
    network: where the parameters live (late FC) against where memory lives
    (early convs)."""
    leaves = [leaf for leaf in layers if leaf.is_leaf and leaf.executed
              and (leaf.params or leaf.macs or leaf.activation_elements)]
    x = list(range(len(leaves)))
    custom = [f"{leaf.path} ({leaf.type}), output {_shape_text(leaf.output_shape)}" for leaf in leaves]
    rows = [
        ("params", "parameters (count)", [leaf.params for leaf in leaves], "%{y:,} parameters"),
        ("macs", "MACs (multiply-adds)", [leaf.macs for leaf in leaves], "%{y:,} MACs"),
        ("activations", "activations (bytes)", [leaf.activation_elements * bytes_per_element for leaf in leaves],
         "%{y:,} bytes of output"),
    ]
    data, annotations, fig_layout = [], [], {}
    for i, (key, title, values, hover) in enumerate(rows):
        suffix = "" if i == 0 else str(i + 1)
        data.append({
            "type": "bar", "name": title, "x": x, "y": values, "customdata": custom, "yaxis": f"y{suffix}",
            "marker": {"color": COLOURS[key]}, "showlegend": False,
            "hovertemplate": f"%{{customdata}}<br>{hover}<extra></extra>",
        })
        top = 1 - i * 0.35
        fig_layout[f"yaxis{suffix}"] = axis(title, domain=[top - 0.28, top], rangemode="tozero")
        if values and max(values) > 0:
            at = max(range(len(values)), key=values.__getitem__)
            annotations.append({
                "x": at, "y": values[at], "xref": "x", "yref": f"y{suffix}", "showarrow": True, "arrowhead": 2,
                "ax": 40 if at < len(values) / 2 else -40, "ay": -18,
                "text": f"{leaves[at].path}", "font": {"size": 11}, "bgcolor": "rgba(255,255,255,.85)",
            })
    show_ticks = len(leaves) <= 60
    fig_layout["xaxis"] = axis("leaf layers, in execution order", anchor="y3",
                               tickmode="array" if show_ticks else "auto", tickvals=x if show_ticks else None,
                               ticktext=[leaf.path for leaf in leaves] if show_ticks else None, tickangle=-60,
                               tickfont={"size": 9}, showgrid=False)
    return {"data": data, "layout": layout(height=680, bargap=0.15, annotations=annotations,
                                           margin={"l": 80, "r": 20, "t": 20, "b": 90}, **fig_layout)}


DIAGRAM_KINDS = (("conv", "convolution", "#2d6cdf"), ("pool", "pooling", COLOURS["pool"]),
                 ("linear", "fully connected", "#2a9d6f"))


def _diagram_kind(layer: Layer) -> str | None:
    if layer.type in CONVS:
        return "conv"
    if layer.type in POOLS | ADAPTIVE_POOLS:
        return "pool"
    if layer.type in LINEARS:
        return "linear"
    return None


def architecture_figure(rows: list[TableRow], input_shape: list[int]) -> dict[str, Any]:
    """The layer stack as boxes: height follows the output's spatial side
    (square root, so 7x7 maps stay visible), width the number of channels (log scale); shaded bands group the blocks
    the layer table folds (a bottleneck, an Inception module)."""
    side_in = max(input_shape[2], 1)
    boxes = []
    cursor = 0.0
    for row in rows:
        layer = row.layer
        kind = _diagram_kind(layer)
        if not (layer.is_leaf and layer.executed and kind and layer.output_shape):
            continue
        out = layer.output_shape
        spatial = len(out) == 4 and kind != "linear"
        channels = out[1] if spatial else out[-1]
        width = 0.5 + math.log2(max(channels, 1)) / 4
        height = max(0.06, math.sqrt(out[2] / side_in)) * 10 if spatial else 0.6
        boxes.append((kind, cursor + width / 2, width, height, layer, channels, row.block))
        cursor += width + 0.3
    data = []
    for kind, label, colour in DIAGRAM_KINDS:
        mine = [b for b in boxes if b[0] == kind]
        if not mine:
            continue
        data.append({
            "type": "bar", "name": label, "x": [b[1] for b in mine], "width": [b[2] for b in mine],
            "base": [-b[3] / 2 for b in mine], "y": [b[3] for b in mine],
            "marker": {"color": colour, "line": {"color": "white", "width": 0.5}},
            "customdata": [[b[4].path, b[4].type, _shape_text(b[4].output_shape), b[5], b[6]] for b in mine],
            "hovertemplate": "<b>%{customdata[0]}</b> (%{customdata[1]})<br>output %{customdata[2]}"
                             "<br>%{customdata[3]:,} channels<br>block %{customdata[4]}<extra></extra>",
        })
    shapes, annotations = [], []
    groups: list[list] = []
    for box in boxes:
        if groups and groups[-1][0] == box[6]:
            groups[-1][2] = box[1] + box[2] / 2
        else:
            groups.append([box[6], box[1] - box[2] / 2, box[1] + box[2] / 2])
    for i, (name, x0, x1) in enumerate(groups):
        shapes.append({"type": "rect", "layer": "below", "x0": x0 - 0.12, "x1": x1 + 0.12, "y0": -5.6, "y1": 5.6,
                       "fillcolor": "#eef2fb" if i % 2 == 0 else "#f6f7fa", "line": {"width": 0}})
        if len(groups) <= 24:
            annotations.append({"x": (x0 + x1) / 2, "y": 5.7, "text": name.rsplit(".", 1)[-1] if "." in name else name,
                                "showarrow": False, "textangle": -45, "yanchor": "bottom", "font": {"size": 10}})
    return {"data": data, "layout": layout(
        height=360, barmode="overlay", shapes=shapes, annotations=annotations, bargap=0,
        xaxis=axis("layers in order; width ∝ log₂ channels", showticklabels=False, showgrid=False,
                   range=[-0.5, cursor + 0.2]),
        yaxis=axis("height ∝ √(output side)", showticklabels=False, showgrid=False, range=[-6, 9]),
        margin={"l": 40, "r": 10, "t": 10, "b": 40}, legend={"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom"},
    )}


def profile_figure(items: list[CompareItem]) -> dict[str, Any]:
    """Cumulative MACs and parameters along depth, one line per model."""
    data = []
    for i, item in enumerate(items):
        colour = PALETTE[i % len(PALETTE)]
        depth = [p.depth for p in item.profile]
        paths = [p.path for p in item.profile]
        for suffix, values, unit, show in (("", [p.macs for p in item.profile], "MACs", True),
                                           ("2", [p.params for p in item.profile], "parameters", False)):
            data.append({
                "type": "scatter", "mode": "lines", "line": {"shape": "hv", "color": colour, "width": 2},
                "name": item.name, "legendgroup": item.id, "showlegend": show, "x": depth, "y": values,
                "yaxis": f"y{suffix}", "customdata": paths,
                "hovertemplate": f"<b>{item.name}</b><br>%{{customdata}}<br>depth %{{x}}<br>%{{y:,}} {unit} so far<extra></extra>",
            })
    return {"data": data, "layout": layout(
        height=560, updatemenus=log_toggle(["yaxis", "yaxis2"]),
        xaxis=axis("depth: conv and linear layers run so far", anchor="y2"),
        yaxis=axis("cumulative MACs (multiply-adds)", domain=[0.55, 1], rangemode="tozero"),
        yaxis2=axis("cumulative parameters (count)", domain=[0, 0.45], rangemode="tozero"),
        legend=LEGEND_BELOW, margin={"l": 80, "r": 20, "t": 40, "b": 50},
    )}


def stages_figure(items: list[CompareItem]) -> dict[str, Any]:
    """MACs, parameters and activation memory per output stride, grouped by model."""
    order: dict[str, tuple] = {}
    for item in items:
        for stage in item.stages:
            key = (0, stage.stride) if stage.stride else ((1, 0) if stage.name == HEAD else (2, 0))
            order.setdefault(stage.name, key)
    names = sorted(order, key=order.__getitem__)
    data = []
    metrics = (("", "macs", "MACs (multiply-adds)"), ("2", "params", "parameters (count)"),
               ("3", "activation_bytes", "activations (bytes)"))
    for i, item in enumerate(items):
        by_name = {s.name: s for s in item.stages}
        for suffix, field, unit in metrics:
            data.append({
                "type": "bar", "name": item.name, "legendgroup": item.id, "showlegend": suffix == "",
                "x": names, "y": [getattr(by_name[n], field) if n in by_name else 0 for n in names],
                "customdata": [by_name[n].label if n in by_name else n for n in names],
                "marker": {"color": PALETTE[i % len(PALETTE)]}, "yaxis": f"y{suffix}",
                "hovertemplate": f"<b>{item.name}</b><br>%{{customdata}}<br>%{{y:,}} {unit}<extra></extra>",
            })
    return {"data": data, "layout": layout(
        height=640, barmode="group", updatemenus=log_toggle(["yaxis", "yaxis2", "yaxis3"]),
        xaxis=axis("stage: output stride of the main path, then the head", anchor="y3"),
        yaxis=axis("MACs (multiply-adds)", domain=[0.70, 1], rangemode="tozero"),
        yaxis2=axis("parameters (count)", domain=[0.36, 0.64], rangemode="tozero"),
        yaxis3=axis("activations (bytes)", domain=[0, 0.30], rangemode="tozero"),
        legend=LEGEND_BELOW, margin={"l": 80, "r": 20, "t": 40, "b": 60},
    )}
