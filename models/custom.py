"""Catalog entries for a user's own network -- an uploaded ONNX graph or a
typed Sequential -- so the engine, the pages and the comparisons treat it as
any zoo model. Ids are content hashes: the same graph or text is the same id.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date

import onnx

from models.catalog import Family, ModelEntry
from models.onnx_graph import InputSpec, input_spec, parse
from models.onnx_torch import OnnxGraph
from models.sequential import sequential_module

ONNX_PREFIX, SEQUENTIAL_PREFIX = "onnx-", "seq-"

_THIS_YEAR = date.today().year  # a user's network is of now
ONNX_FAMILY = Family(
    "Your ONNX graph", _THIS_YEAR, "Uploaded ONNX graph",
    "Counted by the zoo's own engine on the graph's nodes. Parameters are the graph's weight initialisers: "
    "where the exporter folded batch norm into the convolutions (torch.onnx.export does in eval mode), each "
    "folded layer's scale and shift are gone and its convolution gained a bias, so the count is lower than "
    "the PyTorch model's by one per folded channel. MACs are unchanged by folding.")
SEQUENTIAL_FAMILY = Family(
    "Your Sequential", _THIS_YEAR, "Typed on the /custom page",
    "A PyTorch-style nn.Sequential, parsed (never run) and counted by the zoo's own engine.")


def onnx_id(data: bytes, resolution: int | None = None) -> str:
    """'onnx-' and the first 16 hex digits of the file's SHA-256; for a graph
    with free height and width analysed at ``resolution``, of the file and
    that resolution: each input size its own id, so an upload at a new size
    never changes what an id already shared shows."""
    digest = hashlib.sha256(data)
    if resolution is not None:
        digest.update(f"\0resolution={resolution}".encode())
    return ONNX_PREFIX + digest.hexdigest()[:16]


def sequential_id(code: str, input_size: tuple[int, int, int]) -> str:
    text = json.dumps({"code": code, "input": list(input_size)}, sort_keys=True)
    return SEQUENTIAL_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


# Graph names the exporters give every graph (torch.onnx: 'main_graph', older ones 'torch-jit-export' ...):
# they tell one upload from another no better than the hash, so the file's name is shown instead.
EXPORTER_GRAPH_NAMES = {"", "main_graph", "torch-jit-export", "torch_jit", "graph", "model", "tf2onnx"}


def file_label(filename: str | None) -> str:
    """'resnet18' from '../../resnet18.onnx': the base name without the extension, only letters, digits,
    '.', '_', '-' and spaces kept, at most 40 characters. A label to show, never a path to open."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = re.sub(r"\.onnx$", "", base, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", re.sub(r"[^\w.\- ]", "", base, flags=re.ASCII)).strip(" .")[:40]


def onnx_entry(model_id: str, model: onnx.ModelProto, resolution: int | None = None,
               filename: str | None = None) -> ModelEntry:
    """The entry of a parsed, checked graph (models/onnx_graph.parse); raises OnnxError. It is named after
    the graph, or after the uploaded file (``filename``, sanitised) where the graph has the exporter's name."""
    spec: InputSpec = input_spec(model, resolution)
    label = model.graph.name
    if label.strip().lower() in EXPORTER_GRAPH_NAMES:
        label = file_label(filename) or label or "graph"
    return ModelEntry(
        id=model_id, name=f"ONNX {label} ({model_id.removeprefix(ONNX_PREFIX)[:8]})", family=ONNX_FAMILY,
        source="onnx", input_size=spec.shape, builder=lambda: OnnxGraph(model, spec.name),
        citation=f"ONNX IR {model.ir_version}, opset {max(o.version for o in model.opset_import)}"
                 + (f", made by {model.producer_name} {model.producer_version}" if model.producer_name else ""),
    )


def onnx_entry_from_bytes(model_id: str, data: bytes, resolution: int | None = None,
                          filename: str | None = None) -> ModelEntry:
    return onnx_entry(model_id, parse(data), resolution, filename)


def sequential_entry(model_id: str, code: str, input_size: tuple[int, int, int]) -> ModelEntry:
    """Raises SequentialError where the text is not a valid Sequential."""
    sequential_module(code)  # checks the text now, not at the first analysis
    return ModelEntry(
        id=model_id, name=f"Sequential ({model_id.removeprefix(SEQUENTIAL_PREFIX)[:8]})", family=SEQUENTIAL_FAMILY,
        source="sequential", input_size=tuple(input_size), builder=lambda: sequential_module(code),
    )
