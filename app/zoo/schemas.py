"""The zoo's JSON shapes (shared/API.md): layers, totals, model detail, catalog, compare."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from app.schemas import ModelCard


class Totals(BaseModel):
    params: int
    trainable_params: int
    macs: int
    activation_elements: int
    activation_bytes: int
    param_bytes: int


class Formula(BaseModel):
    """A course formula with one layer's numbers filled in (app.zoo.formulas)."""
    kind: Literal["output_size", "params", "macs"]
    label: str
    symbolic: str  # e.g. "(W − F + 2P)/S + 1"
    expression: str  # e.g. "(227 − 11 + 2·0)/4 + 1 = 55"
    value: int | list[int]  # [H_out, W_out] for output_size
    note: str | None = None


class Layer(BaseModel):
    path: str
    type: str
    depth: int
    is_leaf: bool
    output_shape: list[int] | None
    params: int
    macs: int
    activation_elements: int
    # Extensions: the input shape and hyper-parameters behind the formulas, and
    # whether the module runs in eval (Inception v3's aux head does not).
    input_shape: list[int] | None
    executed: bool
    attributes: dict[str, Any]
    # Receptive field (input pixels one output element sees; for branches the
    # largest) and jump (input pixels between neighbouring outputs); None where
    # the output is not a map of the input.
    receptive_field: int | None = None
    jump: int | None = None
    formulas: list[Formula] = []


class LayersResponse(BaseModel):
    id: str
    input_shape: list[int]
    totals: Totals
    layers: list[Layer]


class Stage(BaseModel):
    """Cost at one output stride of the main path (app.zoo.layer_stats)."""
    name: str  # "stride 4" or "head"
    label: str  # "stride 4 · 56×56"
    stride: int | None
    height: int
    width: int
    params: int = 0
    macs: int = 0
    activation_bytes: int = 0
    layers: int = 0  # leaf modules


class ProfilePoint(BaseModel):
    depth: int  # conv and linear modules run so far
    path: str
    params: int  # running totals
    macs: int


class ModelDetail(ModelCard):
    totals: Totals
    flops: int  # 2 x MACs
    training_activation_bytes_estimate: int  # forward activations kept for backward, plus their gradients
    # Extensions: the input analysed (?resolution=N) and the cost per stage.
    input_shape: list[int] = []
    stages: list[Stage] = []


class CatalogResponse(BaseModel):
    models: list[ModelCard]


class CompareItem(ModelCard):
    totals: Totals
    # Extensions: what the compare page plots.
    input_shape: list[int] = []
    stages: list[Stage] = []
    profile: list[ProfilePoint] = []


class CompareResponse(BaseModel):
    models: list[CompareItem]
