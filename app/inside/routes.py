"""Inside a network: a convolution's filters, a layer's feature maps on an
image, and what a prediction looked at (shared/API.md's "Inside a network"
contract), and the /models/{id}/inside page with its JSON twin. All model
work runs on the InsideWorker's thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.deps import lookup_entry
from app.errors import InvalidParameter
from app.inside.data import (explain_job, feature_maps_job, filters_job, inside_page_data, parse_method,
                             parse_target, require_weights)
from app.inside.schemas import ExplainResponse, FeatureMapsResponse, FiltersResponse, InsidePage
from app.uploads import read_upload

router = APIRouter()

Layer = Annotated[str | None, Query(max_length=300, description="A convolution's module path; default: the first")]
_PNG = {200: {"content": {"image/png": {}}, "description": "The grid as a PNG"}}


def _form(required: list[str], fields: dict[str, dict]) -> dict:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", *required], "additionalProperties": False,
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "The image (JPEG, PNG, GIF, WebP, BMP, TIFF)"}, **fields}}}}}}


_MAPS_FORM = _form(["layer"], {"layer": {"type": "string", "description": "A module path from the layer table"}})
_EXPLAIN_FORM = _form([], {
    "model": {"type": "string", "description": "A model id; default: the embedded default model"},
    "method": {"type": "string", "enum": ["gradcam", "occlusion", "guided_backprop", "deconvnet"],
               "default": "gradcam"},
    "target": {"type": "integer", "minimum": 0, "description": "A class index; default: the top-1"},
    "layer": {"type": "string", "description": "Grad-CAM's layer; default: the last spatial layer"},
    "crop_png": {"type": "string", "enum": ["true", "false"], "default": "false",
                 "description": "also answer the input crop as a PNG (crop_png), for clients that can't decode"},
})


async def _filters(request: Request, model_id: str, layer: str | None):
    entry = lookup_entry(model_id)
    require_weights(entry)
    return await request.app.state.inside.run(filters_job, request.app.state.inside, request.app.state.analysis_cache,
                                              entry, layer)


@router.get("/api/models/{model_id}/filters", response_model=FiltersResponse)
async def api_filters(request: Request, model_id: str, layer: Layer = None) -> FiltersResponse:
    """A convolution's kernels: shape, statistics, and where their picture is."""
    return (await _filters(request, model_id, layer))[0]


@router.get("/api/models/{model_id}/filters.png", response_class=Response, responses=_PNG)
async def api_filters_png(request: Request, model_id: str, layer: Layer = None) -> Response:
    return Response((await _filters(request, model_id, layer))[1], media_type="image/png")


async def _feature_maps(request: Request, model_id: str):
    settings = request.app.state.settings
    entry = lookup_entry(model_id)
    upload = await read_upload(request, settings.max_upload_bytes, "file", ("layer",))
    layer = upload.fields.get("layer")
    if not layer:
        raise InvalidParameter("Name the layer: a form field 'layer' with a module path from the layer table.")
    require_weights(entry)
    worker = request.app.state.inside
    return await worker.run(feature_maps_job, worker, request.app.state.analysis_cache, entry, upload.file, layer,
                            settings.max_image_pixels)


@router.post("/api/models/{model_id}/feature-maps", response_model=FeatureMapsResponse, openapi_extra=_MAPS_FORM)
async def api_feature_maps(request: Request, model_id: str) -> FeatureMapsResponse:
    """Every channel of a layer's output on the uploaded image, as PNG tiles."""
    return (await _feature_maps(request, model_id))[0]


@router.post("/api/models/{model_id}/feature-maps.png", response_class=Response, responses=_PNG,
             openapi_extra=_MAPS_FORM)
async def api_feature_maps_png(request: Request, model_id: str) -> Response:
    return Response((await _feature_maps(request, model_id))[1], media_type="image/png")


@router.post("/api/explain", response_model=ExplainResponse, openapi_extra=_EXPLAIN_FORM)
async def api_explain(request: Request) -> ExplainResponse:
    """What the prediction looked at: a heatmap over the input crop."""
    settings = request.app.state.settings
    upload = await read_upload(request, settings.max_upload_bytes, "file", ("model", "method", "target", "layer", "crop_png"))
    entry = lookup_entry(upload.fields.get("model") or settings.default_model)
    method = parse_method(upload.fields.get("method"))
    target = parse_target(upload.fields.get("target"))
    if upload.fields.get("layer") and method != "gradcam":
        raise InvalidParameter(f"A layer applies to Grad-CAM only; {method} explains from the input, so leave "
                               "'layer' out.")
    with_crop = upload.fields.get("crop_png") or "false"
    if with_crop not in ("true", "false"):
        raise InvalidParameter(f"crop_png must be true or false; got {with_crop[:20]!r}.")
    require_weights(entry)
    worker = request.app.state.inside
    return await worker.run(explain_job, worker, request.app.state.analysis_cache, entry, upload.file, method,
                            target, upload.fields.get("layer"), settings.max_image_pixels, with_crop == "true")


@router.get("/api/models/{model_id}/inside", response_model=InsidePage)
def api_inside(request: Request, model_id: str) -> InsidePage:
    """The inside page's data: which layers and methods it offers (from the analysis; no weights loaded)."""
    return inside_page_data(request.app.state.analysis_cache, lookup_entry(model_id))


@router.get("/models/{model_id}/inside", response_class=HTMLResponse, include_in_schema=False)
def inside_page(request: Request, model_id: str) -> HTMLResponse:
    data = inside_page_data(request.app.state.analysis_cache, lookup_entry(model_id))
    return request.app.state.templates.TemplateResponse(request, "inside.html", {"data": data})
