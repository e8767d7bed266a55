"""Per-layer analysis: output shapes, parameters, multiply-adds and activation memory.

Counting happens at the aten level (a TorchDispatchMode with torch's own flop
formulas), so functional ops that module hooks miss -- attention matmuls,
``F.linear`` on a child's weight -- are seen and attributed to every module on
the call stack (the innermost one and its ancestors). Module hooks give each
call's output shape. The model runs on the ``meta`` device: no weights, no
random init, no arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import flop_registry

from models import receptive_field
from models.graph import GraphNode, GraphRecorder, node_to_dict
from models.shape_errors import explain_failure
from models.meta import TORCH_TRACING, FastDispatchMode, flat_leaves, no_gc, run_memoised

# Inputs past this side length are refused: nothing in the zoo was trained
# above 600, and the activation figures would be meaningless.
MAX_RESOLUTION = 2048

# Bump when the shape of an Analysis changes: it is part of the cache key.
# 2: receptive field and jump; 3: the bias attribute; 4: the data-flow graph; 5: global receptive fields
ANALYSIS_VERSION = 5

# Module hyper-parameters worth showing beside a row (they feed the formulas).
_ATTRIBUTES = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
    "groups", "in_features", "out_features", "ceil_mode", "output_size",
    "num_features", "embed_dim", "num_heads", "size", "inplace",
)


@dataclass
class LayerRow:
    path: str
    type: str
    depth: int
    is_leaf: bool
    output_shape: list[int] | None = None
    input_shape: list[int] | None = None
    params: int = 0
    macs: int = 0
    activation_elements: int = 0
    executed: bool = True
    attributes: dict[str, Any] = field(default_factory=dict)
    # Input pixels one output element sees, and input pixels between neighbouring
    # elements (models/receptive_field.py); None where the output is not a map of the input.
    receptive_field: int | None = None
    jump: int | None = None
    # Every position of the input has been mixed into each element (global pooling, attention over
    # all tokens, a linear layer over the flattened map): the field is the whole input and stops growing.
    receptive_field_global: bool = False


@dataclass
class Totals:
    params: int
    trainable_params: int
    macs: int
    activation_elements: int
    activation_bytes: int
    param_bytes: int


@dataclass
class Analysis:
    input_shape: list[int]
    totals: Totals
    layers: list[LayerRow]
    dtype: str = "float32"
    trace_ms: float = 0.0
    # The data flow between module calls and functional joins (models/graph.py).
    graph: list[GraphNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # Shallow: dataclasses.asdict deep-copies every row, slower than the trace.
        return {**vars(self), "totals": dict(vars(self.totals)), "layers": [dict(vars(row)) for row in self.layers],
                "graph": [node_to_dict(node) for node in self.graph]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Analysis:
        return cls(
            input_shape=data["input_shape"],
            totals=Totals(**data["totals"]),
            layers=[LayerRow(**row) for row in data["layers"]],
            dtype=data.get("dtype", "float32"),
            trace_ms=data.get("trace_ms", 0.0),
            graph=[GraphNode(**node) for node in data.get("graph", [])],
        )


class AnalysisError(ValueError):
    """The architecture cannot take the requested input (e.g. too small).
    ``where``: the failing layer, the shape it got and what it needs (models/shape_errors.py), when traced."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def _tensors(obj: Any) -> list[torch.Tensor]:
    return [t for t in flat_leaves(obj, []) if isinstance(t, torch.Tensor)]


def _first_shape(obj: Any) -> list[int] | None:
    tensors = _tensors(obj)
    return list(tensors[0].shape) if tensors else None


def _attributes(module: nn.Module) -> dict[str, Any]:
    out = {}
    plain = module.__dict__  # hyper-parameters are plain attributes; nn.Module.__getattr__ is slow to miss
    for name in _ATTRIBUTES:
        value = plain.get(name)
        if isinstance(value, (int, float, bool, str)) or (
            isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)
        ):
            out[name] = list(value) if isinstance(value, tuple) else value
    if "bias" in module._parameters:  # registered as None when absent; the params formula needs to know
        out["bias"] = module._parameters["bias"] is not None
    return out


def _shaped(obj: Any) -> Any:
    """Tensors replaced by their shapes, in aten's shallow argument lists."""
    if isinstance(obj, torch.Tensor):
        return obj.shape
    if isinstance(obj, (tuple, list)):
        return [_shaped(item) for item in obj] if isinstance(obj, list) else tuple(_shaped(item) for item in obj)
    return obj


def _macs(func, args: tuple, kwargs: dict, out: Any) -> int | None:
    """MACs of one aten op by torch's own FLOP formula (``flop_registry``,
    which counts 2 FLOPs per multiply-add), or None for an op without one.
    Most formulas are registered behind torch's ``shape_wrapper``, which maps
    the arguments to shapes with a general pytree walk that costs more than
    the trace around it; the formula it wraps is called with the same shapes."""
    formula = flop_registry.get(func._overloadpacket)
    if formula is None:
        return None
    raw = getattr(formula, "__wrapped__", None)
    if raw is None:  # registered with get_raw=True: it takes the tensors themselves
        return formula(*args, **kwargs, out_val=out) // 2
    return raw(*_shaped(args), out_shape=_shaped(out), **{k: _shaped(v) for k, v in kwargs.items()}) // 2


class _Tracer(FastDispatchMode):
    """Counts MACs of each aten op into the rows of the modules now running."""

    def __init__(self, graph: GraphRecorder) -> None:
        super().__init__()
        self.stack: list[LayerRow] = []
        self.total_macs = 0
        self.used_storages: set[int] = set()
        self.graph = graph

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves = flat_leaves(kwargs, flat_leaves(args, []))
        out = run_memoised(func, args, kwargs, leaves)
        receptive_field.propagate(func, args, leaves, out)
        self.used_storages.update(_storage_key(t) for t in leaves if isinstance(t, torch.Tensor))
        macs = _macs(func, args, kwargs, out)
        if macs is not None:
            self.total_macs += macs
            for row in self.stack:
                row.macs += macs
        if not (self.stack and self.stack[-1].is_leaf):  # inside a leaf, its call is the graph node
            self.graph.op(func, leaves, out, macs)
        return out


def _parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters of every module with its children, in one bottom-up pass."""
    counts: dict[str, int] = {}

    def visit(path: str, module: nn.Module) -> int:
        total = sum(p.numel() for p in module._parameters.values() if p is not None)
        for name, child in module._modules.items():
            if child is not None:
                total += visit(f"{path}.{name}" if path else name, child)
        counts[path] = total
        return total

    visit("", model)
    return counts


@contextmanager
def _hooks(model: nn.Module, modules: list[tuple[str, nn.Module]], tracer: _Tracer, rows: list[LayerRow],
           on_leaf_output) -> Iterator[None]:
    handles = []
    params_of = _parameter_counts(model)

    def make(path: str, module: nn.Module):
        is_leaf = not module._modules
        attributes = _attributes(module)
        row_stack: list[LayerRow] = []

        def pre(mod, args, kwargs=None):
            row = LayerRow(
                path=path, type=type(mod).__name__, depth=path.count(".") + 1,
                is_leaf=is_leaf, params=params_of[path], input_shape=_first_shape(args),
                attributes=dict(attributes),
            )
            rows.append(row)
            row_stack.append(row)
            tracer.stack.append(row)
            tracer.graph.enter(row, args)

        def post(mod, args, output):
            row = row_stack.pop()
            tracer.stack.pop()
            tracer.graph.exit(output)
            row.output_shape = _first_shape(output)
            row.receptive_field, row.jump, row.receptive_field_global = receptive_field.of(output) or (None, None, False)
            if is_leaf:
                on_leaf_output(output, tracer.stack + [row])

        return pre, post

    try:
        for path, module in modules:
            pre, post = make(path, module)
            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


def _with_unexecuted(modules: list[tuple[str, nn.Module]], rows: list[LayerRow], used: set[int]) -> list[LayerRow]:
    """Add rows, marked ``executed=False``, for sub-trees that never ran and
    whose parameters no op touched (Inception v3's aux head in eval), placed
    after the rows of the module defined just before them. A child whose
    weights its parent used functionally (MultiheadAttention's out_proj) is
    part of its parent's row instead."""
    called = {row.path for row in rows}
    result = list(rows)
    skip_prefix = None
    previous = None
    for path, module in modules:
        if skip_prefix and path.startswith(skip_prefix):
            continue
        if path in called:
            previous = path
            continue
        tensors = list(module.parameters()) + list(module.buffers())
        parent_ran = path.rpartition(".")[0] in called
        if any(_storage_key(t) in used for t in tensors) or (parent_ran and not tensors):
            continue
        skip_prefix = path + "."
        insert_at = len(result)
        if previous is not None:
            inside = [i for i, r in enumerate(result) if r.path == previous or r.path.startswith(previous + ".")]
            insert_at = inside[-1] + 1 if inside else insert_at
        result[insert_at:insert_at] = [
            LayerRow(path=name, type=type(m).__name__, depth=name.count(".") + 1,
                     is_leaf=next(iter(m.children()), None) is None,
                     params=sum(p.numel() for p in m.parameters()), executed=False, attributes=_attributes(m))
            for name, m in module.named_modules(prefix=path)
        ]
        previous = path
    return result


def analyse(model: nn.Module, input_shape: tuple[int, ...], device: str | torch.device = "meta",
            dtype: torch.dtype = torch.float32) -> Analysis:
    """Trace one forward pass of ``model`` (already on ``device``) on a zero-batch-cost input."""
    start = time.perf_counter()
    model.eval()
    rows: list[LayerRow] = []
    x = torch.empty(input_shape, device=device, dtype=dtype)
    receptive_field.seed(x)
    tracer = _Tracer(GraphRecorder(x))
    seen = {_storage_key(x)}
    element_size = x.element_size()
    activation = {"elements": x.numel()}
    keep_alive: list[torch.Tensor] = []  # storages stay alive, so their keys stay unique
    modules = [(path, module) for path, module in model.named_modules() if path]  # walked once, used thrice

    def on_leaf_output(output, stack: list[LayerRow]) -> None:
        for t in _tensors(output):
            key = _storage_key(t)
            if key in seen:
                continue
            seen.add(key)
            keep_alive.append(t)
            n = t.numel()
            activation["elements"] += n
            for row in stack:
                row.activation_elements += n

    try:
        with TORCH_TRACING, no_gc(), torch.no_grad(), _hooks(model, modules, tracer, rows, on_leaf_output), tracer:
            model(x)
    except (RuntimeError, ValueError, IndexError, AssertionError, TypeError) as exc:
        graph = getattr(model, "is_onnx_graph", False)  # models/onnx_torch.OnnxGraph (not imported: it imports us)
        where = explain_failure(exc, tracer.stack, rows, graph)
        subject = "The graph" if graph else type(model).__name__
        raise AnalysisError(f"{subject} cannot take input {list(input_shape)}: {where}", where) from exc

    layers = _with_unexecuted(modules, rows, tracer.used_storages)
    params = list({id(p): p for p in model.parameters()}.values())
    totals = Totals(
        params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        macs=tracer.total_macs,
        activation_elements=activation["elements"],
        activation_bytes=activation["elements"] * element_size,
        param_bytes=sum(p.numel() * p.element_size() for p in params),
    )
    return Analysis(
        input_shape=list(input_shape), totals=totals, layers=layers, dtype=str(dtype).removeprefix("torch."),
        trace_ms=(time.perf_counter() - start) * 1000, graph=tracer.graph.finish(layers),
    )


def input_shape_for(entry, resolution: int | None = None) -> tuple[int, int, int, int]:
    channels, height, width = entry.input_size
    if resolution is not None:
        height = width = resolution
    return (1, channels, height, width)


def validate_resolution(resolution: int) -> None:
    if not 1 <= resolution <= MAX_RESOLUTION:
        raise AnalysisError(f"resolution must be between 1 and {MAX_RESOLUTION} pixels, got {resolution}")


def analyse_entry(entry, resolution: int | None = None) -> Analysis:
    """Build the catalog entry on meta as its weights define it and analyse it,
    at its own input size or at ``resolution`` x ``resolution``."""
    from models.build import build_on_meta

    if resolution is not None:
        validate_resolution(resolution)
    try:
        model = build_on_meta(entry, resolution)
    except (ValueError, AssertionError, RuntimeError) as exc:
        raise AnalysisError(f"{entry.id} cannot be built for resolution {resolution}: {exc}") from exc
    return analyse(model, input_shape_for(entry, resolution))
