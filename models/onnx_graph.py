"""An uploaded ONNX graph brought into torch on the meta device, so the zoo's
own engine (models/analysis.py: aten-level MACs, receptive fields, shapes)
analyses it with the same formulas as a zoo model.

Why not a converter such as onnx2torch: it loads every weight into real
memory and evaluates shape sub-graphs (Shape -> Gather -> Concat -> Reshape)
with tensor values, which a meta tensor does not have. Here each node becomes
a torch module (Conv -> nn.Conv2d, Gemm -> nn.Linear, ... so the rows carry
the same types and hyper-parameters as the zoo's) whose weights are meta
tensors of the initialisers' shapes: a weight's values are never read.
Integer tensors and small constants keep their real values on the CPU, so
shape arithmetic gives the exported graph's real shapes.

Nothing is unpickled or executed: the file is parsed as protobuf, and only
the operators in ``OPS`` (a fixed table) ever run. External data is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import onnx
import torch
import torch.nn.functional as F
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from models.analysis import MAX_RESOLUTION

MAX_NODES = 20_000          # far above ViT-L (~2,500 nodes); parse and checks stay well under a second
REAL_VALUE_LIMIT = 4096     # integer/small tensors up to this many elements keep their values
WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization"}


class OnnxError(ValueError):
    """The upload is not a usable ONNX graph; ``kind`` says why:
    'invalid' (not ONNX, corrupt), 'external' (external data), 'unsupported'
    (operators outside ``OPS``: ``ops`` lists them), 'too_large' (nodes),
    'needs_resolution' (free spatial dims and no resolution given)."""

    def __init__(self, kind: str, message: str, ops: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.ops = ops or []


_DTYPES = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32, 7: torch.int64,
           9: torch.bool, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16}


def torch_dtype(elem_type: int) -> torch.dtype:
    if elem_type not in _DTYPES:
        raise OnnxError("unsupported", f"Tensor element type {elem_type} is not supported.")
    return _DTYPES[elem_type]


def numel(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def real_value(tensor: onnx.TensorProto) -> torch.Tensor:
    """A small initialiser's values (protobuf fields only: external data was refused)."""
    return torch.from_numpy(numpy_helper.to_array(tensor).copy())


def _values(t: Any) -> list:
    if isinstance(t, torch.Tensor):
        if t.is_meta:
            raise ValueError("a shape or index argument depends on the input's values, not only its shape")
        return t.reshape(-1).tolist()
    return list(t)


def _ints(t: Any) -> list[int]:
    return [int(v) for v in _values(t)]


# --- operators run as plain functions: (inputs, attributes) -> output(s) ----------------------------------------

def _reshape(x, shape, allowzero=0):
    dims = _ints(shape)
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def _gather(data, indices, axis=0):
    axis %= data.dim()
    if not indices.is_meta:
        indices = torch.where(indices < 0, indices + data.shape[axis], indices)
    if data.is_meta != indices.is_meta:
        indices = indices.to(data.device)
    out = data.index_select(axis, indices.reshape(-1).to(torch.int64))
    return out.reshape(*data.shape[:axis], *indices.shape, *data.shape[axis + 1:])


def _slice(x, starts, ends, axes=None, steps=None):
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    index: list[slice] = [slice(None)] * x.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step <= 0:
            raise ValueError("Slice with a negative step is not supported")
        size = x.shape[axis]
        start = max(0, min(size, start + size if start < 0 else start))
        end = max(0, min(size, end + size if end < 0 else end))
        index[axis] = slice(start, end, step)
    return x[tuple(index)]


def _axes(attrs, axes_input):
    if axes_input is not None:
        return _ints(axes_input)
    return list(attrs.get("axes", []))


def _unsqueeze(x, axes=None, **attrs):
    for axis in sorted(a % (x.dim() + len(_axes(attrs, axes))) for a in _axes(attrs, axes)):
        x = x.unsqueeze(axis)
    return x


def _squeeze(x, axes=None, **attrs):
    axes = _axes(attrs, axes)
    if not axes:
        return x.squeeze()
    for axis in sorted((a % x.dim() for a in axes), reverse=True):
        x = x.squeeze(axis)
    return x


def _reduce(fn: Callable) -> Callable:
    def reduce(x, axes=None, keepdims=1, noop_with_empty_axes=0, **attrs):
        dims = _axes(attrs, axes)
        if not dims:
            if noop_with_empty_axes:
                return x
            dims = list(range(x.dim()))
        return fn(x, dim=dims, keepdim=bool(keepdims))
    return reduce


def _shape(x, start=0, end=None):
    return torch.tensor(list(x.shape)[start:end], dtype=torch.int64, device="cpu")


def _expand(x, shape):
    dims = _ints(shape)
    target = torch.broadcast_shapes(tuple(x.shape), tuple(dims))
    return x.expand(target)


def _constant_of_shape(shape, value=None):
    dims = _ints(shape)
    fill = real_value(value) if value is not None else torch.zeros(1)
    device = "meta" if numel(dims) > REAL_VALUE_LIMIT else "cpu"
    return torch.full(dims, fill.reshape(-1)[0].item(), dtype=fill.dtype, device=device)


def _range(start, limit, delta):
    a, b, d = (_values(t)[0] for t in (start, limit, delta))
    n = max(0, -(-(b - a) // d)) if isinstance(a, int) else max(0, int(-(-(b - a) // d)))
    device = "meta" if n > REAL_VALUE_LIMIT else "cpu"
    return torch.arange(a, b, d, device=device)


def _concat(*xs, axis):
    xs = [x for x in xs if x is not None]
    if any(x.is_meta for x in xs):
        xs = [x.to("meta") for x in xs]
    return torch.cat(xs, dim=axis)


def _split(x, split=None, axis=0, num_outputs=None, **attrs):
    sizes = _ints(split) if split is not None else attrs.get("split")
    if sizes:
        return tuple(torch.split(x, list(sizes), dim=axis))
    n = num_outputs or attrs["_outputs"]
    return tuple(torch.chunk(x, n, dim=axis))


def _gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    a = a.transpose(-1, -2) if transA else a
    b = b.transpose(-1, -2) if transB else b
    out = a @ b * alpha
    return out if c is None else out + c * beta


def _clip(x, low=None, high=None, **attrs):
    low = low if low is not None else attrs.get("min")
    high = high if high is not None else attrs.get("max")
    return torch.clamp(x, min=low, max=high)


def _pad(x, pads=None, value=None, axes=None, mode="constant", **attrs):
    pads = _ints(pads) if pads is not None else list(attrs["pads"])
    n = len(pads) // 2
    axes = _ints(axes) if axes is not None else list(range(n))
    torch_pads: list[int] = []
    for i, axis in sorted(enumerate(axes), key=lambda p: -(p[1] % x.dim())):
        torch_pads += [pads[i], pads[i + n]]
    fill = _values(value)[0] if value is not None else 0.0
    return F.pad(x, torch_pads, mode=mode if mode != "edge" else "replicate", value=fill if mode == "constant" else None)


def _resize(x, roi=None, scales=None, sizes=None, mode="nearest", **attrs):
    if sizes is not None and len(_values(sizes)):
        size = _ints(sizes)[2:]
        return F.interpolate(x, size=size, mode="nearest" if mode == "nearest" else "bilinear")
    factors = [float(v) for v in _values(scales)][2:]
    return F.interpolate(x, scale_factor=factors, mode="nearest" if mode == "nearest" else "bilinear")


def _cast(x, to):
    return x.to(torch_dtype(to))


def _variadic(fn: Callable) -> Callable:
    def apply(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return apply


def _mod(a, b, fmod=0):
    return torch.fmod(a, b) if fmod else torch.remainder(a, b)


def _div(a, b):
    if not a.dtype.is_floating_point and not b.dtype.is_floating_point:
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


def _softmax(fn: Callable) -> Callable:
    return lambda x, axis=-1: fn(x, dim=axis)


def _where(cond, a, b):
    return torch.where(cond.to(torch.bool), a, b)


OPS: dict[str, Callable] = {
    "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": _div, "Pow": torch.pow,
    "Equal": torch.eq, "Less": torch.lt, "Greater": torch.gt, "LessOrEqual": torch.le, "GreaterOrEqual": torch.ge,
    "And": torch.logical_and, "Or": torch.logical_or, "Not": torch.logical_not, "Where": _where, "Mod": _mod,
    "Max": _variadic(torch.maximum), "Min": _variadic(torch.minimum), "Sum": _variadic(torch.add),
    "Relu": F.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Erf": torch.erf, "Sqrt": torch.sqrt,
    "Exp": torch.exp, "Log": torch.log, "Neg": torch.neg, "Abs": torch.abs, "Reciprocal": torch.reciprocal,
    "Floor": torch.floor, "Ceil": torch.ceil, "Softplus": F.softplus,
    "Softmax": _softmax(torch.softmax), "LogSoftmax": _softmax(torch.log_softmax),
    "Gelu": lambda x, approximate="none": F.gelu(x, approximate=approximate),
    "HardSwish": F.hardswish, "HardSigmoid": lambda x, alpha=0.2, beta=0.5: torch.clamp(alpha * x + beta, 0, 1),
    "LeakyRelu": lambda x, alpha=0.01: F.leaky_relu(x, alpha), "Elu": lambda x, alpha=1.0: F.elu(x, alpha),
    "Clip": _clip, "MatMul": torch.matmul, "Gemm": _gemm,
    "Reshape": _reshape, "Flatten": lambda x, axis=1: x.reshape(numel(x.shape[:axis]), -1),
    "Transpose": lambda x, perm=None: x.permute(*(perm or reversed(range(x.dim())))),
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Concat": _concat, "Split": _split, "Slice": _slice,
    "Gather": _gather, "Shape": _shape, "Cast": _cast, "Expand": _expand, "Tile": lambda x, r: x.repeat(*_ints(r)),
    "ConstantOfShape": _constant_of_shape, "Range": _range, "Identity": lambda x: x,
    "Dropout": lambda x, *rest, **attrs: x, "Pad": _pad, "Resize": _resize,
    "ReduceMean": _reduce(torch.mean), "ReduceSum": _reduce(torch.sum), "ReduceMax": _reduce(torch.amax),
    "GlobalAveragePool": lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "Size": lambda x: torch.tensor(x.numel(), device="cpu"),
}
# Operators turned into torch modules (their own rows, formulas and receptive fields); see _module_for.
MODULE_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
              "BatchNormalization", "LayerNormalization", "Relu", "Sigmoid", "Tanh", "Softmax", "Clip",
              "Gemm", "MatMul", "Flatten", "Dropout", "Gelu", "HardSwish", "LeakyRelu", "Identity"}
SUPPORTED_OPS = sorted(set(OPS) | MODULE_OPS | {"Constant"})


# --- parsing and checking ----------------------------------------------------------------------------------------

def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = a.t
        elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise OnnxError("unsupported", f"Node {node.name or node.op_type} holds a sub-graph; "
                                           "control flow (If, Loop, Scan) is not supported.", [node.op_type])
        else:
            value = onnx.helper.get_attribute_value(a)
            out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _uses_external_data(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


def parse(data: bytes) -> onnx.ModelProto:
    """Parse and check an upload (raises OnnxError): a ModelProto with one
    graph, no external data, at most MAX_NODES nodes, only supported ops."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OnnxError("invalid", f"This is not a readable ONNX file (protobuf: {exc}).") from None
    graph = model.graph
    missing = [what for what, present in (("IR version", model.ir_version), ("operator set", model.opset_import),
                                          ("graph nodes", graph.node)) if not present]
    if missing:
        what = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
        raise OnnxError("invalid", f"This is not a usable ONNX model: it has no {what}.")
    if len(graph.node) > MAX_NODES:
        raise OnnxError("too_large", f"The graph has {len(graph.node):,} nodes; the limit is {MAX_NODES:,}.")
    tensors = list(graph.initializer) + [a.t for n in graph.node for a in n.attribute
                                         if a.type == onnx.AttributeProto.TENSOR]
    external = [t.name or "(a constant)" for t in tensors if _uses_external_data(t)]
    if external or graph.sparse_initializer:
        raise OnnxError("external", "The graph keeps weights in external data files "
                                    f"({', '.join(external[:5]) or 'sparse initialisers'}); nothing outside the "
                                    "upload is read. Export with the weights inside the file: "
                                    "torch.onnx.export(model, torch.randn(1, 3, 224, 224), \"model.onnx\", "
                                    "external_data=False); or, for a model.onnx next to its .data file, "
                                    "onnx.save(onnx.load(\"model.onnx\"), \"whole.onnx\") and upload whole.onnx.")
    _check_order(graph)
    domains = {n.domain for n in graph.node} - {"", "ai.onnx"}
    unknown = sorted({n.op_type for n in graph.node if n.domain in ("", "ai.onnx") and n.op_type not in SUPPORTED_OPS}
                     | {f"{n.domain}.{n.op_type}" for n in graph.node if n.domain in domains})
    if unknown:
        raise OnnxError("unsupported", f"Unsupported operators: {', '.join(unknown)}.", unknown)
    return model


def _check_order(graph: onnx.GraphProto) -> None:
    """Every node reads only names defined before it (a truncated or unsorted graph fails here)."""
    defined = {t.name for t in graph.initializer} | {i.name for i in graph.input} | {""}
    for node in graph.node:
        missing = [name for name in node.input if name not in defined]
        if missing:
            raise OnnxError("invalid", f"Node {node.name or node.op_type!r} reads {missing[0]!r}, which no earlier "
                                       "node, input or initialiser defines: the graph is truncated or not sorted.")
        defined.update(node.output)
    if not graph.output or graph.output[0].name not in defined:
        raise OnnxError("invalid", "The graph's output is not computed by any node.")


def strip_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without the values of large initialisers (shapes are kept):
    what the analysis needs, a fraction of the upload's size. Parsed afresh
    from its own bytes: protobuf's upb backend keeps a message's fields in
    one arena that clearing a field does not shrink, so the cleared copy
    would hold the whole upload's memory for as long as it is kept
    (bench/custom_memory.py: +100 MB resident per 100 MB upload)."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    for tensor in stripped.graph.initializer:
        if numel(tensor.dims) > REAL_VALUE_LIMIT:
            for name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                tensor.ClearField(name)
    return onnx.ModelProto.FromString(stripped.SerializeToString())


_WEIGHT_SLOTS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization"}  # their inputs 1.. are weights


def _weight_inputs(graph: onnx.GraphProto, inputs: set[str]) -> list[str]:
    """The graph inputs read only as a weight, bias or statistic (input 1 or later of a node in
    ``_WEIGHT_SLOTS``): what torch.onnx.export(..., export_params=False) leaves as inputs."""
    uses: dict[str, list[bool]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in inputs:
                uses.setdefault(name, []).append(index >= 1 and node.op_type in _WEIGHT_SLOTS)
    return [name for name in (i.name for i in graph.input) if uses.get(name) and all(uses[name])]


@dataclass
class InputSpec:
    name: str
    shape: tuple[int, int, int]   # (C, H, W) without the batch
    free: bool = False  # H or W is free in the graph: the resolution asked for fills it


def input_spec(model: onnx.ModelProto, resolution: int | None = None) -> InputSpec:
    """The one image input: (C, H, W), batch dropped; free spatial dims take ``resolution``."""
    names = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in names]
    weights = _weight_inputs(model.graph, {i.name for i in inputs})
    if weights and len(inputs) - len(weights) == 1:
        shown = ", ".join(weights[:3]) + (f" and {len(weights) - 3:,} more" if len(weights) > 3 else "")
        raise OnnxError("unsupported", f"The graph was exported without its weights: {len(weights):,} of its inputs "
                                       f"({shown}) feed only the weights and biases of Conv, Gemm, MatMul or "
                                       "BatchNormalization nodes, so their sizes cannot be counted. Export again "
                                       "with the weights inside: torch.onnx.export(model, torch.randn(1, 3, 224, "
                                       "224), \"model.onnx\", export_params=True, external_data=False).")
    if len(inputs) != 1:
        raise OnnxError("unsupported", f"The graph takes {len(inputs)} inputs; ConvZoo analyses graphs of one image input.")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise OnnxError("unsupported", f"The input {inputs[0].name!r} has {len(dims)} dimensions; "
                                       "ConvZoo analyses images as N x C x H x W.")
    values = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    if values[1] is None:
        raise OnnxError("unsupported", "The input's channel count is not fixed in the graph.")
    free = values[2] is None or values[3] is None
    if free and resolution is None:
        raise OnnxError("needs_resolution", "The graph's input has free height and width: give a resolution.")
    height = resolution if values[2] is None else values[2]
    width = resolution if values[3] is None else values[3]
    if max(height, width) > MAX_RESOLUTION:
        raise OnnxError("unsupported", f"The input is {height}x{width}; ConvZoo analyses sides up to {MAX_RESOLUTION}.")
    return InputSpec(inputs[0].name, (values[1], height, width), free)
