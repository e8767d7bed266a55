"""The formulas of the course slides, with one layer's numbers filled in:
output size (W - F + 2P)/S + 1, parameters (F*F*C_in/groups + 1)*C_out and
multiply-adds, for conv, linear and pooling rows.

They are computed from each row's hyper-parameters and input shape alone,
so a student can check them by hand; the tests check them against what the
analysis engine measured, which stays the source of truth.
"""

from __future__ import annotations

import math
from typing import Any

from app.zoo.schemas import Formula, Layer

CONVS = {"Conv2d", "Conv2dSame"}
POOLS = {"MaxPool2d", "AvgPool2d", "MaxPool2dSame", "AvgPool2dSame"}
ADAPTIVE_POOLS = {"AdaptiveAvgPool2d", "AdaptiveMaxPool2d"}
LINEARS = {"Linear", "NonDynamicallyQuantizableLinear"}
TF_SAME = {"Conv2dSame", "MaxPool2dSame", "AvgPool2dSame"}  # timm: padding computed at run time


def _pair(value: Any) -> tuple[Any, Any]:
    return (value[0], value[1]) if isinstance(value, (list, tuple)) else (value, value)


def _n(value: int) -> str:
    return f"{value:,}"


def _dim(size: int, kernel: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> tuple[int, str]:
    """PyTorch's output length along one axis, and the arithmetic that gives it."""
    span = dilation * (kernel - 1) + 1
    numerator = size - span + 2 * pad
    kernel_text = str(kernel) if dilation == 1 else f"({dilation}·({kernel} − 1) + 1)"
    inner = f"({size} − {kernel_text} + 2·{pad})/{stride}"
    exact = numerator % stride == 0
    if ceil_mode:
        out = -(-numerator // stride) + 1
        text = inner if exact else f"⌈{inner}⌉"
        if (out - 1) * stride >= size + pad:  # the last window would start in the padding
            out -= 1
            return out, f"{text} + 1 − 1 = {out} (a last window starting in the padding is dropped)"
        return out, f"{text} + 1 = {out}"
    out = numerator // stride + 1
    if exact:
        return out, f"{inner} + 1 = {out}"
    return out, f"⌊{inner}⌋ + 1 = ⌊{numerator / stride:g}⌋ + 1 = {out}"


def _same_dim(size: int, stride: int) -> tuple[int, str]:
    out = -(-size // stride)
    return out, f"⌈{size}/{stride}⌉ = {out}"


def output_size(layer: Layer) -> Formula | None:
    """W' = (W - F + 2P)/S + 1 along height and width, as PyTorch rounds it."""
    if layer.input_shape is None or len(layer.input_shape) != 4:
        return None
    a = layer.attributes
    height, width = layer.input_shape[2], layer.input_shape[3]
    if layer.type in ADAPTIVE_POOLS:
        if "output_size" not in a:  # e.g. (None, 7): one side follows the input
            return None
        out = list(_pair(a["output_size"]))
        return Formula(kind="output_size", label="Output size", symbolic="fixed by output_size",
                       expression=f"{height}×{width} → {out[0]}×{out[1]} (the window adapts to the input)",
                       value=out)
    kernel, stride = _pair(a["kernel_size"]), _pair(a.get("stride") or a["kernel_size"])
    dilation = _pair(a.get("dilation", 1))
    ceil_mode = bool(a.get("ceil_mode", False))
    if layer.type in TF_SAME:
        dims = [_same_dim(height, stride[0]), _same_dim(width, stride[1])]
        symbolic, note = "⌈W/S⌉", "TensorFlow 'same' padding, computed from the input at run time"
    else:
        padding = a.get("padding", 0)
        if padding == "valid":
            padding = 0
        if padding == "same":
            dims = [(height, f"{height} ('same' padding)"), (width, f"{width} ('same' padding)")]
        else:
            pad = _pair(padding)
            dims = [_dim(height, kernel[0], pad[0], stride[0], dilation[0], ceil_mode),
                    _dim(width, kernel[1], pad[1], stride[1], dilation[1], ceil_mode)]
        symbolic = "(W − F + 2P)/S + 1" if dilation == (1, 1) else "(W − (D·(F − 1) + 1) + 2P)/S + 1"
        if ceil_mode:
            symbolic = "⌈(W − F + 2P)/S⌉ + 1" if dilation == (1, 1) else "⌈(W − (D·(F − 1) + 1) + 2P)/S⌉ + 1"
        note = "ceil_mode=True: rounds up" if ceil_mode else None
    if dims[0][1] == dims[1][1]:
        expression = dims[0][1]
    else:
        expression = f"H: {dims[0][1]}; W: {dims[1][1]}"
    return Formula(kind="output_size", label="Output size", symbolic=symbolic, expression=expression,
                   value=[dims[0][0], dims[1][0]], note=note)


def params(layer: Layer) -> Formula | None:
    a = layer.attributes
    bias = bool(a.get("bias", False))
    if layer.type in CONVS:
        kh, kw = _pair(a["kernel_size"])
        c_in, c_out, groups = a["in_channels"], a["out_channels"], a.get("groups", 1)
        per_filter = kh * kw * c_in // groups
        kernel = f"{kh}·{kw}·{c_in}" + (f"/{groups}" if groups != 1 else "")
        if bias:
            return Formula(kind="params", label="Parameters", symbolic="(F·F·C_in/groups + 1)·C_out",
                           expression=f"({kernel} + 1)·{c_out} = {_n((per_filter + 1) * c_out)}",
                           value=(per_filter + 1) * c_out)
        return Formula(kind="params", label="Parameters", symbolic="F·F·C_in/groups·C_out (no bias)",
                       expression=f"{kernel}·{c_out} = {_n(per_filter * c_out)}", value=per_filter * c_out)
    if layer.type in LINEARS:
        n_in, n_out = a["in_features"], a["out_features"]
        if bias:
            return Formula(kind="params", label="Parameters", symbolic="(in + 1)·out",
                           expression=f"({n_in} + 1)·{n_out} = {_n((n_in + 1) * n_out)}", value=(n_in + 1) * n_out)
        return Formula(kind="params", label="Parameters", symbolic="in·out (no bias)",
                       expression=f"{n_in}·{n_out} = {_n(n_in * n_out)}", value=n_in * n_out)
    if layer.type in POOLS | ADAPTIVE_POOLS:
        return Formula(kind="params", label="Parameters", symbolic="",
                       expression="0 (pooling has no weights)", value=0)
    return None


def macs(layer: Layer) -> Formula | None:
    a = layer.attributes
    if layer.output_shape is None:
        return None
    if layer.type in CONVS and len(layer.output_shape) == 4:
        h_out, w_out = layer.output_shape[2], layer.output_shape[3]
        kh, kw = _pair(a["kernel_size"])
        c_in, c_out, groups = a["in_channels"], a["out_channels"], a.get("groups", 1)
        value = h_out * w_out * kh * kw * c_in // groups * c_out
        group_text = f"/{groups}" if groups != 1 else ""
        return Formula(kind="macs", label="MACs", symbolic="H_out·W_out·F·F·C_in/groups·C_out",
                       expression=f"{h_out}·{w_out}·{kh}·{kw}·{c_in}{group_text}·{c_out} = {_n(value)}", value=value,
                       note="FLOPs = 2·MACs; the bias adds are not counted")
    if layer.type in LINEARS:
        n_in, n_out = a["in_features"], a["out_features"]
        rows = math.prod(layer.output_shape[:-1])
        if rows == 1:
            return Formula(kind="macs", label="MACs", symbolic="in·out",
                           expression=f"{n_in}·{n_out} = {_n(n_in * n_out)}", value=n_in * n_out,
                           note="FLOPs = 2·MACs")
        return Formula(kind="macs", label="MACs", symbolic="N·in·out (N vectors, e.g. tokens)",
                       expression=f"{rows}·{n_in}·{n_out} = {_n(rows * n_in * n_out)}", value=rows * n_in * n_out,
                       note="FLOPs = 2·MACs")
    if layer.type in POOLS | ADAPTIVE_POOLS:
        return Formula(kind="macs", label="MACs", symbolic="",
                       expression="0 (a max or mean of each window: no multiply-adds)", value=0)
    return None


# The hyper-parameters each kind's formulas read; a row whose analysis did not record one
# (a value the analysis keeps no record of, e.g. timm's MViTv2 pools give kernel_size as a
# list) gets no formulas rather than a guess.
_NEEDED = ((CONVS, ("kernel_size", "in_channels", "out_channels")), (LINEARS, ("in_features", "out_features")),
           (POOLS, ("kernel_size",)))


def layer_formulas(layer: Layer) -> list[Formula]:
    """The formulas that apply to a leaf row (none for containers or activations)."""
    if not layer.is_leaf:
        return []
    if any(layer.type in kinds and not all(k in layer.attributes for k in keys) for kinds, keys in _NEEDED):
        return []
    if layer.type in CONVS | POOLS | ADAPTIVE_POOLS:
        found = [output_size(layer), params(layer), macs(layer)]
    elif layer.type in LINEARS:
        found = [params(layer), macs(layer)]
    else:
        found = []
    return [f for f in found if f is not None]
