"""Complexity against accuracy: /charts/accuracy and its twin /api/charts/accuracy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from app.deps import analyse_missing, get_cache
from app.charts.schemas import AccuracyChart
from app.analysis_cache import AnalysisCache
from app.charts.data import accuracy_chart_data
from app.charts.figures import accuracy_figure, density_figure, ilsvrc_figure

router = APIRouter()

Cache = Annotated[AnalysisCache, Depends(get_cache)]
AnalyseMissing = Annotated[bool, Depends(analyse_missing)]


@router.get("/api/charts/accuracy", response_model=AccuracyChart)
def api_accuracy_chart(cache: Cache, complete: AnalyseMissing) -> AccuracyChart:
    return accuracy_chart_data(cache, complete)


@router.get("/charts/accuracy", response_class=HTMLResponse, include_in_schema=False)
def accuracy_chart_page(request: Request, cache: Cache, complete: AnalyseMissing) -> HTMLResponse:
    chart = accuracy_chart_data(cache, complete)
    figures = {"accuracy": accuracy_figure(chart.points), "density": density_figure(chart.points),
               "ilsvrc": ilsvrc_figure(chart.ilsvrc)}
    return request.app.state.templates.TemplateResponse(
        request, "charts_accuracy.html", {"chart": chart, "figures": figures})
