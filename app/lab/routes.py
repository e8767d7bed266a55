"""The course lab: /lab and its JSON twins under /api/lab/...

Parameter bounds live in the Query declarations, so a value out of range, or
not an integer, is a 422 invalid_parameter naming the field and the reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from app.deps import get_cache, lookup_entry
from app.analysis_cache import AnalysisCache
from app.lab.lessons import (LIMITS, BottleneckLesson, FactorisedLesson, InceptionResult, MobileNetGrid, Op,
                              OutputSizeLesson, SeparableLesson, StackLesson, bottleneck_data, factorised_data,
                              inception_data, mobilenet_data, output_size_data, separable_data, stack_data)
from app.lab.data import GrowthLesson, LabPage, growth_data, lab_data
from app.lab.numbers import NumbersPage, numbers_data
from models.analysis import MAX_RESOLUTION

router = APIRouter()

MAX_CHANNELS = LIMITS["channels"]
MAX_KERNEL = LIMITS["kernel"]
MAX_LAYERS = LIMITS["layers"]

Side = Annotated[int, Query(ge=1, le=MAX_RESOLUTION, description="Feature map side, in pixels")]
Channels = Annotated[int, Query(ge=1, le=MAX_CHANNELS, description="Channels")]
Filters = Annotated[int, Query(ge=0, le=MAX_CHANNELS, description="Filters; 0 leaves the layer out")]
Kernel = Annotated[int, Query(ge=1, le=MAX_KERNEL, description="Kernel side (odd)")]
Cache = Annotated[AnalysisCache, Depends(get_cache)]


@router.get("/api/lab/inception", response_model=InceptionResult)
def api_inception(height: Side, width: Side, channels: Channels, c1: Filters, c3r: Filters, c3: Filters,
                  c5r: Filters, c5: Filters, pool_proj: Filters, pool: bool = True) -> InceptionResult:
    return inception_data(height, width, channels, c1, c3r, c3, c5r, c5, pool_proj, pool)


@router.get("/api/lab/bottleneck", response_model=BottleneckLesson)
def api_bottleneck(height: Side, width: Side, channels: Channels, c1: Filters, c3r: Filters, c3: Filters,
                   c5r: Filters, c5: Filters, pool_proj: Filters, pool: bool = True) -> BottleneckLesson:
    return bottleneck_data(height, width, channels, c1, c3r, c3, c5r, c5, pool_proj, pool)


@router.get("/api/lab/output-size", response_model=OutputSizeLesson)
def api_output_size(size: Side, kernel: Annotated[int, Query(ge=1, le=MAX_RESOLUTION)],
                    op: Op = "conv", padding: Annotated[int, Query(ge=0, le=MAX_RESOLUTION)] = 0,
                    stride: Annotated[int, Query(ge=1, le=MAX_RESOLUTION)] = 1,
                    dilation: Annotated[int, Query(ge=1, le=LIMITS["dilation"])] = 1, ceil_mode: bool = False) -> OutputSizeLesson:
    return output_size_data(op, size, kernel, padding, stride, dilation, ceil_mode)


@router.get("/api/lab/receptive-field", response_model=StackLesson)
def api_receptive_field(kernel: Kernel = 3, layers: Annotated[int, Query(ge=1, le=MAX_LAYERS)] = 3,
                        channels: Channels = 64, size: Side = 56) -> StackLesson:
    return stack_data(kernel, layers, channels, size)


@router.get("/api/lab/receptive-growth", response_model=GrowthLesson)
def api_receptive_growth(cache: Cache,
                         model: Annotated[str, Query(description="A zoo model id")] = "vgg16") -> GrowthLesson:
    return growth_data(cache, lookup_entry(model))


@router.get("/api/lab/factorised", response_model=FactorisedLesson)
def api_factorised(n: Kernel = 5, channels: Channels = 64, filters: Channels = 64, size: Side = 17) -> FactorisedLesson:
    return factorised_data(n, channels, filters, size)


@router.get("/api/lab/separable", response_model=SeparableLesson)
def api_separable(in_channels: Channels = 512, out_channels: Channels = 512, kernel: Kernel = 3,
                  size: Side = 14) -> SeparableLesson:
    return separable_data(in_channels, out_channels, kernel, size)


@router.get("/api/lab/mobilenet", response_model=MobileNetGrid)
def api_mobilenet() -> MobileNetGrid:
    return mobilenet_data()


@router.get("/api/lab", response_model=LabPage)
def api_lab(cache: Cache) -> LabPage:
    return lab_data(cache)


@router.get("/lab", response_class=HTMLResponse, include_in_schema=False)
def lab_page(request: Request, cache: Cache) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "lab.html", {"data": lab_data(cache)})


@router.get("/api/lab/numbers", response_model=NumbersPage)
def api_numbers(cache: Cache,
                model: Annotated[str | None, Query(description="Only the claims about this zoo model id (empty: all)")] = None
                ) -> NumbersPage:
    """Every figure the course's slides quote, recomputed, with a verdict (exact, rounded, other_variant, wrong)."""
    return numbers_data(cache, lookup_entry(model).id if model else None)


@router.get("/lab/numbers", response_class=HTMLResponse, include_in_schema=False)
def numbers_page(request: Request, cache: Cache) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "lab_numbers.html", {"data": numbers_data(cache)})
