"""The JSON shapes of the own-network feature: an upload's answer, the
Sequential request and answer, and the /custom page's data."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from app.schemas import ModelCard
from app.zoo.schemas import LayersResponse
from models.analysis import MAX_RESOLUTION
from models.sequential import MAX_CODE_CHARS


class OnnxCreated(ModelCard):
    """The card of an uploaded graph; ``url`` is its model page."""
    url: str
    cached: bool  # the same file was analysed before: nothing was recomputed
    analysis_ms: float  # parse, checks and analysis of this request, in milliseconds


MAX_CHANNELS = 4096
Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
Side = Annotated[int, Field(ge=1, le=MAX_RESOLUTION)]


class SequentialRequest(BaseModel):
    code: str = Field(max_length=MAX_CODE_CHARS, description="nn.Sequential(...) text; parsed, never executed")
    input: tuple[Channels, Side, Side] = Field(description="[C, H, W] of one input image")


class SequentialResponse(LayersResponse):
    """The same JSON as /api/models/{id}/layers, and where the network's pages are."""
    name: str
    url: str


class Preset(BaseModel):
    key: str
    name: str
    input: list[int]
    code: str


class CustomPage(BaseModel):
    presets: list[Preset]
    layers: list[str]  # the layers a Sequential may use
    onnx_ops: list[str]  # the ONNX operators an upload may use
    max_onnx_bytes: int
    max_onnx_nodes: int
    max_resolution: int = MAX_RESOLUTION
