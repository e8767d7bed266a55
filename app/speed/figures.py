"""Plotly figure dicts for measured speed (data in, figure out, nothing else)."""

from __future__ import annotations

import math

from app.speed.data import ModelSpeed, SpeedPage, SpeedRow, predicted_ms

_FONT = {"family": "system-ui, sans-serif", "size": 13}
_MARGIN = {"l": 70, "r": 20, "t": 40, "b": 60}


def _layout(title: str, x: dict, y: dict, **extra) -> dict:
    # SI tick prefixes (15G, not 15B): the convention of the page's text and tables.
    x, y = {"exponentformat": "SI", **x}, {"exponentformat": "SI", **y}
    return {"title": {"text": title}, "font": _FONT, "margin": _MARGIN, "hovermode": "closest",
            "xaxis": x, "yaxis": y, "legend": {"font": {"size": 11}}, **extra}


def _by_family(rows: list[SpeedRow]) -> dict[str, list[SpeedRow]]:
    families: dict[str, list[SpeedRow]] = {}
    for row in rows:
        families.setdefault(row.family, []).append(row)
    return families


def accuracy_vs_throughput(page: SpeedPage) -> dict:
    """Top-1 against the best measured images/s (Canziani et al. 2016; Bianco et al. 2018)."""
    rows = [r for r in page.rows if r.best_images_per_s and r.top1 is not None]
    data = [{
        "type": "scatter", "mode": "markers", "name": family,
        "x": [r.best_images_per_s for r in members], "y": [r.top1 for r in members],
        "text": [r.name for r in members], "customdata": [[r.best_batch_size, r.id] for r in members],
        "hovertemplate": "%{text}<br>%{x:.1f} images/s (batch %{customdata[0]})<br>top-1 %{y:.2f}%<extra></extra>",
    } for family, members in _by_family(rows).items()]
    return {"data": data, "layout": _layout(
        "ImageNet top-1 vs measured throughput",
        {"title": {"text": "throughput (images/s, best batch size, log scale)"}, "type": "log"},
        {"title": {"text": "top-1 accuracy (%)"}})}


def macs_vs_latency(page: SpeedPage) -> dict:
    """Batch-1 latency against multiply-adds, log-log, with the least-squares line:
    points above it run slower than their MACs predict."""
    rows = [r for r in page.rows if r.macs and r.latency_ms]
    data = [{
        "type": "scatter", "mode": "markers", "name": family,
        "x": [r.macs for r in members], "y": [r.latency_ms for r in members], "text": [r.name for r in members],
        "customdata": [r.vs_macs for r in members],
        "hovertemplate": "%{text}<br>%{x:.3s} MACs<br>%{y:.2f} ms<br>%{customdata:.2f}× the fit<extra></extra>",
    } for family, members in _by_family(rows).items()]
    if page.fit is not None:
        low = min(r.macs for r in rows)
        high = max(r.macs for r in rows)
        xs = [10 ** (math.log10(low) + (math.log10(high) - math.log10(low)) * i / 20) for i in range(21)]
        data.append({
            "type": "scatter", "mode": "lines", "name": f"fit: latency ∝ MACs^{page.fit.slope:.2f}",
            "x": xs, "y": [predicted_ms(page.fit, x) for x in xs],
            "line": {"color": "#444", "dash": "dash"}, "hoverinfo": "skip",
        })
    return {"data": data, "layout": _layout(
        "Multiply-adds vs measured latency (batch 1)",
        {"title": {"text": "multiply-adds per image (MACs, log scale)"}, "type": "log"},
        {"title": {"text": "latency at batch 1 (ms, median, log scale)"}, "type": "log"})}


def family_vs_macs(page: SpeedPage) -> dict:
    """Each family's geometric-mean ratio of measured to MAC-predicted latency."""
    families = list(reversed(page.families))  # slowest on top
    return {"data": [{
        # Bars grow from 1 (the fit) towards each ratio: right is slower, left faster.
        "type": "bar", "orientation": "h", "base": [1] * len(families), "x": [f.vs_macs - 1 for f in families],
        "y": [f.family for f in families], "customdata": [[f.vs_macs, f.models] for f in families],
        "marker": {"color": ["#c0392b" if f.vs_macs > 1 else "#2d6cdf" for f in families]},
        "hovertemplate": "%{y}: %{customdata[0]:.2f}× the MAC fit (%{customdata[1]} models)<extra></extra>",
    }], "layout": _layout(
        "Latency relative to what MACs predict, by family",
        {"title": {"text": "measured / predicted latency (×, log scale; > 1: slower than its MACs)"}, "type": "log"},
        {"automargin": True}, height=max(260, 28 * len(families) + 120),
        shapes=[{"type": "line", "x0": 1, "x1": 1, "yref": "paper", "y0": 0, "y1": 1,
                 "line": {"color": "#888", "dash": "dot"}}])}


def model_speed_figure(data: ModelSpeed) -> dict:
    """Latency and throughput against batch size, one pair of traces per measured variant."""
    traces = []
    for result in data.results:
        label = f"{result.input_shape[1]}×{result.input_shape[2]} {result.variant}"
        sizes = [b.batch_size for b in result.batches]
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": f"latency, {label}", "x": sizes,
            "y": [b.median_ms for b in result.batches],
            "error_y": {"type": "data", "symmetric": False,
                        "array": [b.p90_ms - b.median_ms for b in result.batches], "arrayminus": [0] * len(sizes)},
            "hovertemplate": "batch %{x}: %{y:.2f} ms median (bar to p90)<extra></extra>",
        })
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": f"throughput, {label}", "x": sizes,
            "y": [b.images_per_s for b in result.batches], "yaxis": "y2", "line": {"dash": "dot"},
            "hovertemplate": "batch %{x}: %{y:.1f} images/s<extra></extra>",
        })
    return {"data": traces, "layout": _layout(
        f"Measured on {data.device.name} ({data.device.kind}, {data.device.threads} threads)",
        {"title": {"text": "batch size (images, log scale)"}, "type": "log", "dtick": math.log10(2)},
        {"title": {"text": "latency per batch (ms, median)"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "throughput (images/s)"}, "overlaying": "y", "side": "right",
                "rangemode": "tozero", "tickmode": "auto", "showgrid": False},
        legend={"orientation": "h", "y": -0.25, "font": {"size": 11}},
        margin={**_MARGIN, "r": 70, "b": 110})}
