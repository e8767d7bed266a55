"""Your own network: POST /api/custom/onnx (an ONNX upload), POST
/api/custom/sequential (a typed nn.Sequential), and the /custom page with its
JSON twin. The ids they answer with work wherever a zoo id does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from app.analysis_cache import AnalysisCache
from app.custom.data import add_onnx, add_sequential, custom_page_data, parse_resolution
from app.custom.schemas import CustomPage, OnnxCreated, SequentialRequest, SequentialResponse
from app.deps import get_cache
from app.errors import Busy
from app.uploads import read_upload
from models.analysis import MAX_RESOLUTION

router = APIRouter()
MAX_UPLOADS_IN_FLIGHT = 2
Cache = Annotated[AnalysisCache, Depends(get_cache)]

_FORM_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "additionalProperties": False,
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "An .onnx file, weights inside it"},
        "resolution": {"type": "integer", "minimum": 1, "maximum": MAX_RESOLUTION,
                       "description": "Side of the input in pixels, for graphs with free H and W"},
    }}}}}}


@router.post("/api/custom/onnx", response_model=OnnxCreated, status_code=201, openapi_extra=_FORM_SCHEMA)
async def api_custom_onnx(request: Request) -> OnnxCreated:
    """Analyse an uploaded ONNX graph; its id is 'onnx-' and 16 hex digits of
    the file's SHA-256. The body streams in bounded (413 past the limit); the
    parsing and analysis run in the thread pool."""
    state = request.app.state
    # Each upload in flight holds its file in memory (up to max_onnx_bytes): a few at a time. The check and
    # the increment run on the event loop with no await between them, so no lock is needed.
    in_flight = getattr(state, "onnx_uploads_in_flight", 0)
    if in_flight >= MAX_UPLOADS_IN_FLIGHT:
        raise Busy(f"{in_flight} ONNX uploads are being analysed; try again in a moment.", retry_after_s=2)
    state.onnx_uploads_in_flight = in_flight + 1
    try:
        upload = await read_upload(request, state.settings.max_onnx_bytes, "file", ("resolution",))
        resolution = parse_resolution(upload.fields.get("resolution"))
        return await run_in_threadpool(add_onnx, state.custom_store, state.analysis_cache, upload.file, resolution,
                                       upload.filename)
    finally:
        state.onnx_uploads_in_flight -= 1


@router.post("/api/custom/sequential", response_model=SequentialResponse)
def api_custom_sequential(request: Request, body: SequentialRequest, cache: Cache) -> SequentialResponse:
    """The per-layer table of a typed nn.Sequential (parsed, never executed)."""
    return add_sequential(request.app.state.custom_store, cache, body)


@router.get("/api/custom", response_model=CustomPage)
def api_custom_page(request: Request) -> CustomPage:
    return custom_page_data(request.app.state.settings.max_onnx_bytes)


@router.get("/custom", response_class=HTMLResponse, include_in_schema=False)
def custom_page(request: Request) -> HTMLResponse:
    data = custom_page_data(request.app.state.settings.max_onnx_bytes)
    return request.app.state.templates.TemplateResponse(request, "custom.html", {"page": data})
