"""The zoo's JSON shapes (shared/API.md): layers, totals, model detail, catalog, compare."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

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
    # Every position of the input is mixed into each element (global pooling, attention over all
    # tokens, a linear layer over the whole map): the field is the whole input and grows no more.
    receptive_field_global: bool = False
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


class TrainingMemory(BaseModel):
    """What one training step holds besides the batch, in bytes at the parameters' dtype: one weight
    copy, one gradient per weight, the optimizer's per-weight state (torch.optim: SGD keeps none,
    momentum one buffer, Adam/AdamW two moments) and the activations kept for backward (the
    estimate above, for one image)."""
    optimizer: str
    state_per_weight: int  # optimizer buffers per parameter
    weights: int
    gradients: int
    optimizer_state: int
    activations: int
    total: int


class InputRule(BaseModel):
    """The resolutions the model takes (models/resolution.py): what the page's resolution box allows."""
    smallest: int
    only: bool
    multiple_of: int | None
    reason: str


class ModelDetail(ModelCard):
    # The card's fields (params, macs, input_size) describe the model at its own input size;
    # totals, flops, input_shape and stages describe the input analysed (?resolution=N).
    totals: Totals = Field(description="at the input analysed (input_shape; ?resolution=N)")
    flops: int = Field(description="2 x totals.macs: at the input analysed, like totals; the card's macs are "
                                   "at the model's own input_size")
    # Activations only: forward activations kept for backward, plus their gradients (one image).
    training_activation_bytes_estimate: int
    # Extensions: the input analysed (?resolution=N) and the cost per stage.
    input_shape: list[int] = []
    stages: list[Stage] = []
    # Re-parameterisable timm nets (RepVGG, MobileOne, FastViT ...): the totals
    # of the inference form, fused by timm's own reparameterize_model (the form
    # timm's benchmark table counts); ``totals`` are the form as trained. None elsewhere.
    inference_form: Totals | None = None
    pretrained_tags: list[str] = []  # timm architectures: timm's pretrained tags
    # Extensions (issue 17): all a training step holds, per optimizer; the resolutions the model takes.
    training_memory: list[TrainingMemory] = []
    input_rule: InputRule | None = None


class CatalogResponse(BaseModel):
    models: list[ModelCard]
    # Extensions: how many cards match the filters (all of them, unpaged), and the page.
    total: int = 0
    page: int = 1
    per_page: int | None = None  # None: every match on one page (the default, as before paging)
    # Cards a range filter left out because their value is unknown: no year, no top-1, or
    # params and MACs not worked out yet (a model not analysed)
    unknown_left_out: int = 0


class CompareItem(ModelCard):
    totals: Totals
    # Extensions: what the compare page plots.
    input_shape: list[int] = []
    stages: list[Stage] = []
    profile: list[ProfilePoint] = []


class CompareResponse(BaseModel):
    models: list[CompareItem]


class GraphNode(BaseModel):
    """A node of the data-flow graph (models/graph.py): the network input, a
    layer (module call), a functional op (``add``, ``cat``, ``mul``,
    ``matmul`` ... whose ``path`` is the block it runs in), or a block
    (``kind`` "block"; ``folded``: drawn closed as one node with its summed
    costs, ``contains`` layers and ops). ``parent``: id of the enclosing
    block call; ``row``: index of the module call's row in ``/layers``."""
    id: str
    kind: str
    path: str
    type: str
    output_shape: list[int] | None
    params: int
    macs: int
    receptive_field: int | None
    parent: str | None
    depth: int
    row: int | None
    folded: bool = False
    contains: int = 0


class GraphEdge(BaseModel):
    source: str
    target: str


class GraphResponse(BaseModel):
    """The graph at one folding: ``depth`` (None: nothing folded) with the
    blocks in ``opened``/``closed`` overriding it; ``blocks``: the open blocks
    that hold the nodes (drawn as frames)."""
    id: str
    input_shape: list[int]
    depth: int | None
    max_depth: int
    suggested_depth: int
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    blocks: list[GraphNode]
