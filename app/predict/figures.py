"""The /predict page's Plotly figure: a horizontal bar chart of top-k softmax
probabilities. Built here as a figure dict with empty data; the page's script
fills in the labels and probabilities of each answer it receives."""

from __future__ import annotations


def probability_figure() -> dict:
    return {
        "data": [{
            "type": "bar", "orientation": "h", "x": [], "y": [], "text": [],
            "textposition": "auto", "marker": {"color": "#2d6cdf"},
            "hovertemplate": "%{y}: %{x:.2%}<extra></extra>",
        }],
        "layout": {
            "height": 280, "margin": {"l": 10, "r": 20, "t": 36, "b": 46},
            "title": {"text": "", "font": {"size": 14}},
            "xaxis": {"title": {"text": "probability (softmax output, 0–1)"}, "range": [0, 1],
                      "tickformat": ".0%"},
            # category: LeNet-5's labels "0".."9" would otherwise be read as numbers and placed by value
            "yaxis": {"type": "category", "autorange": "reversed", "automargin": True},
        },
        "config": {"displayModeBar": False, "responsive": True},
    }
