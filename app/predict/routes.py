"""Predictions: POST /api/predict (shared/API.md), the /predict page and its
JSON twin, the example photos, and the inference worker's counters."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.deps import lookup_entry
from app.predict.schemas import PredictPage, PredictResponse, WorkerStatus
from app.predict.figures import probability_figure
from app.predict.pipeline import example_file, parse_topk, predict, predict_page_data, worker_status
from app.uploads import read_upload

router = APIRouter()

_FORM_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "additionalProperties": False,
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "The image (JPEG, PNG, GIF, WebP, BMP, TIFF)"},
        "model": {"type": "string", "description": "A model id; default: the embedded default model"},
        "topk": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
    }}}}}}


@router.post("/api/predict", response_model=PredictResponse, openapi_extra=_FORM_SCHEMA)
async def api_predict(request: Request) -> Response:
    """The top-k classes of an uploaded image. Async: the body streams in
    bounded, and all model work happens in the thread pool and the worker.
    The answer is built once as a PredictResponse and sent as its JSON
    (``response_model`` documents it; FastAPI would validate it a second time)."""
    started = time.perf_counter()
    settings = request.app.state.settings
    upload = await read_upload(request, settings.max_upload_bytes, "file", ("model", "topk"))
    topk = parse_topk(upload.fields.get("topk"))
    entry = lookup_entry(upload.fields.get("model") or settings.default_model)
    answer = await predict(request.app.state.inference, settings, entry, upload.file, topk, started)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.get("/api/predict/models", response_model=PredictPage)
def api_predict_models(request: Request, available: Annotated[bool | None, Query(
        description="true: only the models that can predict here (the /predict page's data); false: only those "
                    "that can't, each with why; absent: the whole catalog")] = None) -> PredictPage:
    return predict_page_data(request.app.state.settings, request.app.state.inference, available)


@router.get("/api/predict/worker", response_model=WorkerStatus)
def api_predict_worker(request: Request) -> WorkerStatus:
    return worker_status(request.app.state.inference)


@router.get("/api/predict/examples/{name}", response_class=FileResponse, responses={
    200: {"description": "The example photo", "content": {"image/png": {}, "image/jpeg": {}}}})
def api_predict_example(name: str) -> FileResponse:
    return FileResponse(example_file(name), headers={"Cache-Control": "public, max-age=86400"})


@router.get("/predict", response_class=HTMLResponse)
def predict_page(request: Request):
    """Lists the models that can predict (its JSON twin: /api/predict/models?available=true);
    the whole catalog's list of 1,456 would make the page a megabyte."""
    data = predict_page_data(request.app.state.settings, request.app.state.inference, available=True)
    return request.app.state.templates.TemplateResponse(
        request, "predict.html", {"data": data, "figure": probability_figure()})
