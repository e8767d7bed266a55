"""Measured speed: the /speed page and its /api twin, a model's results,
starting, following and cancelling measurement jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from app.deps import get_cache, lookup_entry
from app.analysis_cache import AnalysisCache
from app.speed.figures import accuracy_vs_throughput, family_vs_macs, macs_vs_latency, model_speed_figure
from app.speed.data import ModelSpeed, SpeedPage, model_speed_data, speed_data
from app.speed.jobs import Job, JobList, MeasureAllParams, SpeedJobs, SpeedParams
from app.zoo.data import analysis_for
from models.catalog import ModelEntry
from models.registry import list_models

router = APIRouter()

Cache = Annotated[AnalysisCache, Depends(get_cache)]
BudgetMs = Annotated[float | None, Query(gt=0, le=1e6, description="Latency budget, ms per image at batch 1")]
Dtype = Annotated[Literal["float32", "float16", "bfloat16"], Query(description="Which measurements to show")]
RuntimeQuery = Annotated[Literal["eager", "onnxruntime"], Query(description="Which runtime's measurements to show")]


def get_jobs(request: Request) -> SpeedJobs:
    return request.app.state.speed_jobs


Jobs = Annotated[SpeedJobs, Depends(get_jobs)]


def _checked(cache: AnalysisCache, entry: ModelEntry, params: SpeedParams) -> ModelEntry:
    """Refuse a resolution the architecture cannot take before a job starts (422, not a failed job)."""
    if params.resolution is not None:
        analysis_for(cache, entry, params.resolution)
    return entry


def _accepted(job: Job) -> JSONResponse:
    return JSONResponse(job.model_dump(mode="json"), status_code=202, headers={"Location": f"/api/jobs/{job.id}"})


@router.get("/api/models/{model_id}/speed", response_model=ModelSpeed)
def api_model_speed(model_id: str, jobs: Jobs) -> ModelSpeed:
    return model_speed_data(jobs.store, lookup_entry(model_id))


@router.get("/api/models/{model_id}/speed/figure")
def api_model_speed_figure(model_id: str, jobs: Jobs) -> dict:
    """What the model page's speed section draws: latency and throughput vs batch
    size, or ``figure: null`` before a measurement (a 200, so the page logs no error)."""
    entry = lookup_entry(model_id)
    if not jobs.store.results(entry.id):
        return {"measured": False, "figure": None}
    data = model_speed_data(jobs.store, entry)
    return {"measured": True, "figure": model_speed_figure(data),
            "runtimes": [r.model_dump(mode="json") for r in data.runtimes]}


@router.post("/api/models/{model_id}/speed", status_code=202, response_model=Job)
def api_measure(model_id: str, jobs: Jobs, cache: Cache, params: Annotated[SpeedParams | None, Body()] = None):
    params = params or SpeedParams()
    entry = lookup_entry(model_id)
    jobs.refuse_while_running()  # 409 at once, before a cold analysis of the resolution
    return _accepted(jobs.submit("model", [_checked(cache, entry, params)], params))


@router.post("/api/speed/measure-all", status_code=202, response_model=Job)
def api_measure_all(jobs: Jobs, params: Annotated[MeasureAllParams | None, Body()] = None):
    params = params or MeasureAllParams()
    # A model that cannot take a chosen resolution fails on its own inside the job.
    entries = [lookup_entry(i) for i in params.models] if params.models else list_models()
    config = SpeedParams(**params.model_dump(exclude={"models", "skip_measured"}))
    return _accepted(jobs.submit("all", entries, config, skip_measured=params.skip_measured))


@router.get("/api/jobs", response_model=JobList)
def api_jobs(jobs: Jobs) -> JobList:
    return jobs.jobs()


@router.get("/api/jobs/{job_id}", response_model=Job)
def api_job(job_id: str, jobs: Jobs) -> Job:
    return jobs.get(job_id)


@router.post("/api/jobs/{job_id}/cancel", response_model=Job)
@router.delete("/api/jobs/{job_id}", response_model=Job)
def api_cancel(job_id: str, jobs: Jobs) -> Job:
    return jobs.cancel(job_id)


@router.get("/api/speed", response_model=SpeedPage)
def api_speed(jobs: Jobs, cache: Cache, budget_ms: BudgetMs = None, dtype: Dtype = "float32",
              channels_last: bool = False, runtime: RuntimeQuery = "eager") -> SpeedPage:
    return speed_data(jobs.store, cache, budget_ms, dtype, channels_last, runtime)


@router.get("/speed", response_class=HTMLResponse, include_in_schema=False)
def speed_page(request: Request, jobs: Jobs, cache: Cache, budget_ms: BudgetMs = None, dtype: Dtype = "float32",
               channels_last: bool = False, runtime: RuntimeQuery = "eager", model: str | None = None):
    """The page; ``model`` opens one model's latency and throughput vs batch size."""
    selected = lookup_entry(model).id if model else None
    data = speed_data(jobs.store, cache, budget_ms, dtype, channels_last, runtime)
    figures = {"throughput": accuracy_vs_throughput(data), "latency": macs_vs_latency(data),
               "families": family_vs_macs(data)}
    # The parameters this view was opened with: its links (JSON twin, a model's detail) keep them.
    kept = {"budget_ms": budget_ms, "dtype": None if dtype == "float32" else dtype,
            "channels_last": "true" if channels_last else None}
    return request.app.state.templates.TemplateResponse(request, "speed.html", {
        "data": data, "figures": figures, "rows": {r.id: r for r in data.rows}, "selected": selected,
        "kept": {k: v for k, v in kept.items() if v is not None}})
