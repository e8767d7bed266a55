"""The JSON shape of a weights download (POST /api/models/{id}/weights/fetch,
GET /api/weights/jobs/{id})."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class FetchJob(BaseModel):
    id: str
    model: str
    status: Literal["queued", "running", "done", "failed"]
    received_bytes: int = 0
    total_bytes: int | None = Field(None, description="null while the server has not said the size")
    fraction: float | None = Field(None, description="received / total, 0..1; null while the size is unknown")
    weights: Literal["available", "downloadable", "none"] = Field(description="the model's weights status now")
    error: str | None = Field(None, description="why it failed, in a sentence; never a server path")
