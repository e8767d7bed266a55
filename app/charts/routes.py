"""Complexity against accuracy: /charts/accuracy and its twin /api/charts/accuracy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from app.deps import get_cache
from app.charts.schemas import AccuracyChart
from app.analysis_cache import AnalysisCache
from app.charts.data import accuracy_chart_data
from app.zoo.catalog import chosen_families, family_choices
from app.zoo.data import catalog_data
from app.charts.figures import accuracy_figure, density_figure, ilsvrc_figure

router = APIRouter()

Cache = Annotated[AnalysisCache, Depends(get_cache)]


Names = Annotated[list[str], Query()]


@router.get("/api/charts/accuracy", response_model=AccuracyChart)
def api_accuracy_chart(cache: Cache, family: Names = [], pretrain: Names = [],  # noqa: B006
                       source: Names = []) -> AccuracyChart:  # noqa: B006
    """Filters: ``family``, ``pretrain`` (in1k, in21k ...), ``source``, each repeatable."""
    return accuracy_chart_data(cache, family, pretrain, source)


@router.get("/charts/accuracy", response_class=HTMLResponse, include_in_schema=False)
def accuracy_chart_page(request: Request, cache: Cache, family: Names = [], pretrain: Names = [],  # noqa: B006
                        source: Names = []) -> HTMLResponse:  # noqa: B006
    chart = accuracy_chart_data(cache, family, pretrain, source)
    cards = catalog_data(cache).models
    choices = {"family": [name for name, _ in family_choices([c.family for c in cards if c.top1 is not None])],
               "pretrain": sorted({c.pretrain for c in cards if c.pretrain}),
               "source": sorted({c.source for c in cards})}
    figures = {"accuracy": accuracy_figure(chart.points), "density": density_figure(chart.points),
               "ilsvrc": ilsvrc_figure(chart.ilsvrc)}
    query = request.url.query
    return request.app.state.templates.TemplateResponse(
        request, "charts_accuracy.html", {"chart": chart, "figures": figures, "choices": choices,
                                          "chosen_families": chosen_families(choices["family"], family),
                                          "json_url": "/api/charts/accuracy" + (f"?{query}" if query else "")})
