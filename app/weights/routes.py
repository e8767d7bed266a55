"""Fetching a model's published weights from its page: start a download,
follow its progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.deps import lookup_entry
from app.weights.jobs import WeightsFetches
from app.weights.schemas import FetchJob

router = APIRouter()


def get_fetches(request: Request) -> WeightsFetches:
    return request.app.state.weights_fetches


Fetches = Annotated[WeightsFetches, Depends(get_fetches)]


@router.post("/api/models/{model_id}/weights/fetch", response_model=FetchJob, status_code=202,
             responses={200: {"model": FetchJob, "description": "The weights are here already"}})
def api_fetch_weights(model_id: str, fetches: Fetches) -> JSONResponse:
    """Start downloading the model's published weights into their cache
    (torchvision: torch's hub cache; timm: the Hugging Face cache). 202 with
    the job to follow at ``Location``; 409 ``weights_unavailable`` at once
    when there is nothing to download or no network route to it."""
    job = fetches.start(lookup_entry(model_id))
    return JSONResponse(job.model_dump(mode="json"), status_code=200 if job.status == "done" else 202,
                        headers={"Location": f"/api/weights/jobs/{job.id}"})


@router.get("/api/weights/jobs/{job_id}", response_model=FetchJob)
def api_fetch_job(job_id: str, fetches: Fetches) -> FetchJob:
    return fetches.get(job_id)
