"""The torch module of a parsed ONNX graph (models/onnx_graph.py): one child
module per node, run in the graph's order on meta activations.

Conv, Gemm/MatMul with a weight, pooling, normalisation and activations become
the torch modules the zoo's rows are made of (nn.Conv2d, nn.Linear ...), so
their rows get the same formulas and receptive fields. Every other node is an
``OnnxOp`` named after its operator (its row reads "Reshape", "Add" ...).
Nodes that only compute on shapes and constants (Shape -> Gather -> Concat)
run as plain functions on real CPU integers and get no row.

Parameters are the initialisers that are weights: the weight inputs of Conv,
Gemm, MatMul and the normalisations, and any other float initialiser of more
than one element (ViT's class token and position embedding). The exporter's
de-duplication of equal initialisers (an Identity node copying one) is undone,
so each use counts as in the model that was exported.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import onnx
import torch
from torch import nn

from models.onnx_graph import OPS, REAL_VALUE_LIMIT, WEIGHT_OPS, OnnxError, node_attributes, torch_dtype, numel, real_value

# Inputs whose values (not only shapes) an operator reads: kept real, never moved to meta.
VALUE_INPUTS = {"Reshape": {1}, "Slice": {1, 2, 3, 4}, "Unsqueeze": {1}, "Squeeze": {1}, "Expand": {1},
                "Tile": {1}, "ConstantOfShape": {0}, "Range": {0, 1, 2}, "Pad": {1, 2, 3}, "Resize": {1, 2, 3},
                "Split": {1}, "ReduceMean": {1}, "ReduceSum": {1}, "ReduceMax": {1}, "Gather": {1}, "Clip": {1, 2}}


@cache
def _accepted(op_type: str) -> frozenset[str] | None:
    """Attribute names the function of ``op_type`` takes; None: any."""
    try:
        params = inspect.signature(OPS[op_type]).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params)


# Operators whose output can be much larger than their inputs: never computed on real values.
_GROWING = {"Tile", "Pad", "Resize", "MatMul", "Gemm"}


def _real_if_small(out: Any) -> Any:
    """A computed value stays real only while small: what shape arithmetic needs, bounded memory."""
    if isinstance(out, torch.Tensor) and not out.is_meta and out.numel() > REAL_VALUE_LIMIT:
        return out.to("meta")
    if isinstance(out, tuple):
        return tuple(_real_if_small(o) for o in out)
    return out


def run_op(op_type: str, args: list[Any], attrs: dict[str, Any]) -> Any:
    """One operator of ``OPS``. Values stay real only where they are small and
    feed shapes; when any input is meta (or the operator can grow its output)
    the data inputs go to meta, and the output is meta too."""
    if op_type in _GROWING or any(isinstance(a, torch.Tensor) and a.is_meta for a in args):
        values = VALUE_INPUTS.get(op_type, set())
        args = [a.to("meta") if isinstance(a, torch.Tensor) and i not in values and a.dim() > 0 else a
                for i, a in enumerate(args)]
    accepted = _accepted(op_type)
    if accepted is not None:
        attrs = {k: v for k, v in attrs.items() if k in accepted}
    return _real_if_small(OPS[op_type](*args, **attrs))


class OnnxOp(nn.Module):
    """A node run by its function in ``OPS``; weights among its inputs are parameters."""

    def __init__(self, op_type: str, attrs: dict[str, Any], fixed: dict[int, Any], arity: int) -> None:
        super().__init__()
        self.op_type, self.attrs, self.arity = op_type, attrs, arity
        self.fixed_constants: dict[int, Any] = {}
        for position, value in fixed.items():
            if isinstance(value, nn.Parameter):
                self.register_parameter(f"input{position}", value)
            else:
                self.fixed_constants[position] = value

    def forward(self, *dynamic: Any) -> Any:
        supplied = iter(dynamic)
        args = []
        for position in range(self.arity):
            if position in self.fixed_constants:
                args.append(self.fixed_constants[position])
            elif f"input{position}" in self._parameters:
                args.append(self._parameters[f"input{position}"])
            else:
                args.append(next(supplied))
        return run_op(self.op_type, args, self.attrs)


@cache
def _op_class(op_type: str) -> type[OnnxOp]:
    """A subclass per operator, so a row's type names it."""
    return type(op_type, (OnnxOp,), {"__doc__": f"The ONNX operator {op_type}."})


def _scoped_name(name: str) -> str:
    """TorchScript exports name nodes by module scope, "/layer1/layer1.0/conv1/Conv": the module path and
    the operator, "layer1.0.conv1" + "Conv" -> "layer1_0_conv1_Conv" (a module name cannot hold dots)."""
    parts = [p for p in name.split("/") if p]
    path: list[str] = []
    for part in parts[:-1]:
        if path and part.startswith(path[-1] + "."):
            path[-1] = part
        else:
            path.append(part)
    return ".".join(path + parts[-1:])


@dataclass
class _Step:
    inputs: list[str]        # names of the values passed at run time ("" for an omitted optional input)
    outputs: list[str]
    module: str | None       # child module's name, or None for a shape computation run as a function
    op_type: str
    attrs: dict[str, Any]


def _pair_pads(attrs: dict[str, Any], rank: int) -> list[int]:
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise OnnxError("unsupported", "auto_pad SAME_UPPER / SAME_LOWER is not supported; export with explicit pads.",
                        [attrs.get("auto_pad")])
    pads = list(attrs.get("pads", [0] * 2 * rank))
    if pads[:rank] != pads[rank:]:
        raise OnnxError("unsupported", f"Asymmetric padding {pads} is not supported.")
    return pads[:rank]


class OnnxGraph(nn.Module):
    """forward(x: N x C x H x W) -> the graph's first output."""

    is_onnx_graph = True  # models/analysis.py words shape errors for a graph (node names, no layer to edit)

    def __init__(self, model: onnx.ModelProto, input_name: str) -> None:
        super().__init__()
        graph = model.graph
        self.input_name, self.output_name = input_name, graph.output[0].name
        self.initialisers = {t.name: t for t in graph.initializer}
        self.constants: dict[str, Any] = {}       # real (or, when large, meta) values known before the input
        self.weights: dict[str, nn.Parameter] = {}
        self.steps: list[_Step] = []
        uses: dict[str, int] = {}
        for node in graph.node:
            for name in node.input:
                uses[name] = uses.get(name, 0) + 1
        static: set[str] = set()  # names whose value is known or depends on shapes only
        for name, tensor in self.initialisers.items():
            if not tensor.data_type or torch_dtype(tensor.data_type).is_floating_point and numel(tensor.dims) > 1:
                continue  # a weight, made a parameter by its consumer
            self.constants[name] = self._value(tensor)
            static.add(name)
        for index, node in enumerate(graph.node):
            attrs = node_attributes(node)
            if node.op_type == "Constant":
                self.constants[node.output[0]] = self._constant(attrs)
                static.add(node.output[0])
                continue
            if node.op_type == "Identity" and node.input[0] in self.initialisers and node.input[0] not in static:
                self.initialisers[node.output[0]] = self.initialisers[node.input[0]]  # a copy: its own parameter
                continue
            if node.op_type == "Split" and "split" not in attrs and len(node.input) < 2:
                attrs["_outputs"] = len(node.output)
            if node.op_type == "Shape" or all(not n or n in static for n in node.input):
                self.steps.append(_Step(list(node.input), list(node.output), None, node.op_type, attrs))
                static.update(node.output)
                continue
            module, dynamic = self._module_for(node, attrs)
            name = self._unique(_scoped_name(node.name) or f"{node.op_type}_{index}")
            self.add_module(name, module)
            self.steps.append(_Step(dynamic, list(node.output), name, node.op_type, attrs))

    # -- building -------------------------------------------------------------------------------------------------

    def _unique(self, raw: str) -> str:
        name = re.sub(r"[^0-9A-Za-z_]+", "_", raw).strip("_") or "node"
        candidate, n = name, 1
        while candidate in self._modules or hasattr(self, candidate):
            n += 1
            candidate = f"{name}_{n}"
        return candidate

    @staticmethod
    def _value(tensor: onnx.TensorProto) -> torch.Tensor:
        dtype = torch_dtype(tensor.data_type)
        if numel(tensor.dims) > REAL_VALUE_LIMIT:
            return torch.empty(list(tensor.dims), dtype=dtype, device="meta")
        try:
            return real_value(tensor)
        except (ValueError, TypeError) as exc:
            raise OnnxError("invalid", f"Initialiser {tensor.name!r} cannot be read ({exc}).") from None

    def _constant(self, attrs: dict[str, Any]) -> Any:
        if "value" in attrs:
            return self._value(attrs["value"])
        for key, dtype in (("value_float", torch.float32), ("value_floats", torch.float32),
                           ("value_int", torch.int64), ("value_ints", torch.int64)):
            if key in attrs:
                return torch.tensor(attrs[key], dtype=dtype, device="cpu")
        raise OnnxError("unsupported", f"A Constant node with {sorted(attrs)} is not supported.", ["Constant"])

    def _weight(self, name: str) -> nn.Parameter | None:
        """The parameter of a weight initialiser (one per name, shared by its consumers)."""
        tensor = self.initialisers.get(name)
        if tensor is None:
            return None
        if name not in self.weights:
            self.weights[name] = nn.Parameter(
                torch.empty(list(tensor.dims), dtype=torch_dtype(tensor.data_type), device="meta"), requires_grad=True)
        return self.weights[name]

    def _module_for(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> tuple[nn.Module, list[str]]:
        """The node's module and the names it takes at run time."""
        op, ins = node.op_type, list(node.input)
        w = self._weight(ins[1]) if len(ins) > 1 and op in WEIGHT_OPS else None
        with torch.device("meta"):
            module = self._standard_module(op, ins, attrs, w)
        if module is not None:
            return module, ins[:1]
        if op not in OPS:
            raise OnnxError("unsupported", f"The {op} node {node.name!r} is supported only with its weights as "
                                           "initialisers and symmetric padding.", [op])
        fixed: dict[int, Any] = {}
        for position, name in enumerate(ins):
            if name in self.constants:
                fixed[position] = self.constants[name]
            elif name in self.initialisers:
                fixed[position] = self._weight(name)
        return _op_class(op)(op, attrs, fixed, len(ins)), [n for i, n in enumerate(ins) if i not in fixed]

    def _standard_module(self, op: str, ins: list[str], attrs: dict[str, Any], w) -> nn.Module | None:
        bias = self._weight(ins[2]) if len(ins) > 2 and ins[2] else None
        if op in ("Conv", "ConvTranspose") and w is not None and w.dim() in (3, 4, 5):
            rank, groups = w.dim() - 2, attrs.get("group", 1)
            cls = {"Conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
                   "ConvTranspose": (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)}[op][rank - 1]
            in_ch, out_ch = (w.shape[1] * groups, w.shape[0]) if op == "Conv" else (w.shape[0], w.shape[1] * groups)
            extra = {"output_padding": tuple(attrs.get("output_padding", [0] * rank))} if op == "ConvTranspose" else {}
            module = cls(in_ch, out_ch, tuple(w.shape[2:]), stride=tuple(attrs.get("strides", [1] * rank)),
                         padding=tuple(_pair_pads(attrs, rank)), dilation=tuple(attrs.get("dilations", [1] * rank)),
                         groups=groups, bias=bias is not None, **extra)
            module.weight = w
            if bias is not None:
                module.bias = bias
            return module
        if op == "Gemm" and w is not None and w.dim() == 2 and not attrs.get("transA", 0) \
                and (bias is None or bias.numel() in (w.shape[0], w.shape[1])):
            out_f, in_f = w.shape if attrs.get("transB", 0) else (w.shape[1], w.shape[0])
            return self._linear(in_f, out_f, w, bias)
        if op == "MatMul" and w is not None and w.dim() == 2 and ins[0] not in self.initialisers:
            return self._linear(w.shape[0], w.shape[1], w, None)
        if op == "BatchNormalization" and w is not None and bias is not None and len(ins) == 5:
            # Running mean and variance stay buffers, as in torch; scale and shift are the parameters.
            module = nn.BatchNorm2d(w.shape[0], eps=attrs.get("epsilon", 1e-5))
            module._check_input_dim = lambda x: None  # any rank, as ONNX allows
            module.weight, module.bias = w, bias
            return module
        if op == "LayerNormalization" and w is not None and attrs.get("axis", -1) == -1:
            module = nn.LayerNorm(tuple(w.shape), eps=attrs.get("epsilon", 1e-5), bias=bias is not None)
            module.weight = w
            if bias is not None:
                module.bias = bias
            return module
        return self._parameter_free(op, ins, attrs)

    def _linear(self, in_f: int, out_f: int, w: nn.Parameter, bias) -> nn.Linear:
        module = nn.Linear(in_f, out_f, bias=bias is not None)
        # Same element count as the export's layout; nn.Linear wants (out, in).
        module.weight = w if tuple(w.shape) == (out_f, in_f) else nn.Parameter(
            w.detach().reshape(out_f, in_f), requires_grad=True)
        if bias is not None:
            module.bias = bias
        return module

    def _parameter_free(self, op: str, ins: list[str], attrs: dict[str, Any]) -> nn.Module | None:
        kernel = attrs.get("kernel_shape")
        if op in ("MaxPool", "AveragePool") and kernel and len(kernel) in (1, 2, 3):
            rank = len(kernel)
            common = dict(kernel_size=tuple(kernel), stride=tuple(attrs.get("strides", [1] * rank)),
                          padding=tuple(_pair_pads(attrs, rank)), ceil_mode=bool(attrs.get("ceil_mode", 0)))
            if op == "MaxPool":
                return (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[rank - 1](
                    dilation=tuple(attrs.get("dilations", [1] * rank)), **common)
            if any(d != 1 for d in attrs.get("dilations", [1])):
                return None
            return (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[rank - 1](
                count_include_pad=bool(attrs.get("count_include_pad", 0)), **common)
        simple = {"GlobalAveragePool": lambda: nn.AdaptiveAvgPool2d(1), "GlobalMaxPool": lambda: nn.AdaptiveMaxPool2d(1),
                  "Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "HardSwish": nn.Hardswish,
                  "Identity": nn.Identity,
                  "Gelu": lambda: nn.GELU(approximate=attrs.get("approximate", "none")),
                  "LeakyRelu": lambda: nn.LeakyReLU(attrs.get("alpha", 0.01)),
                  "Softmax": lambda: nn.Softmax(dim=attrs.get("axis", -1)),
                  "Flatten": lambda: nn.Flatten() if attrs.get("axis", 1) == 1 else None,
                  "Dropout": lambda: nn.Dropout(0.0)}
        if op in simple and (op != "Dropout" or len(ins) == 1):
            return simple[op]()
        if op == "Clip":
            low, high = (self._scalar(ins, 1, attrs.get("min")), self._scalar(ins, 2, attrs.get("max")))
            if low == 0.0 and high == 6.0:
                return nn.ReLU6()
            if low == 0.0 and high is None:
                return nn.ReLU()
            if low is not None and high is not None:
                return nn.Hardtanh(low, high)
        return None

    def _scalar(self, ins: list[str], position: int, default: float | None) -> float | None:
        if len(ins) > position and ins[position]:
            value = self.constants.get(ins[position])
            return float(value.reshape(-1)[0]) if isinstance(value, torch.Tensor) and value.numel() == 1 \
                and not value.is_meta else None
        return default

    # -- running --------------------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, Any] = dict(self.constants)
        env[self.input_name] = x
        for step in self.steps:
            args = [env[name] if name else None for name in step.inputs]
            try:
                if step.module is None:
                    out = run_op(step.op_type, args, step.attrs)
                else:
                    out = self._modules[step.module](*args)
            except (KeyError, ArithmeticError, TypeError) as exc:  # as ValueError: the engine reports it
                raise ValueError(f"{step.op_type} node {step.module or step.outputs[0]!r} fails: {exc!r}") from exc
            outs = out if isinstance(out, tuple) else (out,)
            for name, value in zip(step.outputs, outs):
                if name:
                    env[name] = value
        return env[self.output_name]
