"""The JSON shapes that several features share (API.md's error shape, the model
card, health). Each feature keeps its own shapes in its ``schemas.py``; the
page data and the /api bodies are the same objects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body (API.md's error shape)."""

    error: ErrorDetail


# Declared on every route, so /openapi.json describes the errors as they are sent.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorResponse, "description": "Bad request: the body says what to change."},
    "5XX": {"model": ErrorResponse, "description": "Server error or busy (503 with Retry-After)."},
}


class TrainedHere(BaseModel):
    dataset: str
    train_images: int
    held_out_images: int
    held_out_accuracy: float  # percent, top-1 on the held-out images


class ModelCard(BaseModel):
    id: str
    name: str
    family: str
    year: int | None  # None: a timm architecture none of whose configs names a paper
    source: Literal["torchvision", "timm", "classic", "onnx", "sequential"]
    input_size: list[int]
    params: int | None  # None until the model is analysed (``analysed``: false); never a guess
    macs: int | None
    top1: float | None
    top5: float | None
    accuracy_source: str | None
    weights: Literal["available", "downloadable", "none"]
    # Extensions beyond API.md's card.
    paper: str | None
    introduced: str | None
    citation: str | None
    weights_reason: str
    # False while the model waits for its analysis (params and macs null until then).
    analysed: bool = True
    # timm architectures: what the best tag was pre-trained on (in1k, in21k ...)
    # and the input side its top-1 was measured at (MACs on charts are at that side).
    pretrain: str | None = None
    top1_resolution: int | None = None
    trained_here: TrainedHere | None = Field(
        default=None, description="Weights trained by ConvZoo itself (LeNet-5 on scikit-learn's digits), "
                                  "with their accuracy on a held-out split; null until trained")


class WarmupStatus(BaseModel):
    total: int
    done: int
    failed: list[str]
    running: bool
    current: str | None


class Health(BaseModel):
    status: Literal["ok"]
    device: str
    versions: dict[str, str]
    warmup: WarmupStatus
