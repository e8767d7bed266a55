"""Why a network cannot take an input, in words a student can act on: the
layer where the forward pass stopped, the shape it got, and what it needs --
in place of PyTorch's raw message ("mat1 and mat2 shapes cannot be
multiplied", "shape '[1, 64, 9, 7, 9, 7]' is invalid ...").

Works from the rows of the interrupted trace (models/analysis.py): the rows
still running when the error was raised, innermost last, and the finished
ones before them.
"""

from __future__ import annotations

import re
from math import prod
from typing import Any, Protocol


class LayerRow(Protocol):
    """What this module reads of a models.analysis.LayerRow (taken as plain
    data, so the engine imports this module and not the other way round)."""

    path: str
    type: str
    is_leaf: bool
    input_shape: list[int] | None
    output_shape: list[int] | None
    attributes: dict[str, Any]

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_LINEAR = {"Linear", "LazyLinear"}
_CONV = {"Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"}
_WINDOWED = _CONV | {"MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"}
_NORM = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d"}
_INVALID_RESHAPE = re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)")


def shape_text(shape: list[int] | None) -> str:
    return "x".join(map(str, shape)) if shape else "?"


def _pair(value, default: int = 1) -> list[int]:
    if value is None:
        return [default, default]
    return list(value) * 2 if isinstance(value, list) and len(value) == 1 else (
        list(value) if isinstance(value, list) else [value, value])


def _ordinal(row: LayerRow, rows: list[LayerRow]) -> str:
    same = [r for r in rows if r.type == row.type and r.is_leaf]
    index = next((i for i, r in enumerate(same) if r is row), len(same) - 1)
    return f"the {_ORDINALS[index]} {row.type}" if index < len(_ORDINALS) else f"{row.type} number {index + 1}"


def _name(row: LayerRow) -> str:
    """A Sequential's children are numbered: 'layer 7' reads better than '7'."""
    return f"layer {row.path}" if row.path.replace(".", "").isdigit() else row.path


def _features_source(features: int, finished: list[LayerRow]) -> str:
    """'16x4x4 = 256': the last map that was flattened into ``features``."""
    for row in reversed(finished):
        for shape in (row.output_shape, row.input_shape):
            if shape and len(shape) > 2 and prod(shape[1:]) == features:
                return f"{shape_text(shape[1:])} = {features:,}"
    return f"{features:,}"


def _layer(row: LayerRow, graph: bool) -> str:
    """'the layer 3 (Conv2d)' in a Sequential or zoo model, 'node conv1.Conv (Conv2d)' in an ONNX graph."""
    return f"node {row.path} ({row.type})" if graph else f"the layer {row.path} ({row.type})"


# In an uploaded graph the reader cannot edit a layer: the weights fix what each node needs, and the graph
# fits the input size it was exported for.
_GRAPH_FIX = "The graph's weights fix this: analyse it at the input size it was exported for."


def _linear(row: LayerRow, rows: list[LayerRow], finished: list[LayerRow], graph: bool) -> str | None:
    expected, got = row.attributes.get("in_features"), row.input_shape
    if expected is None or not got or got[-1] == expected:
        return None
    if graph:
        return (f"{_layer(row, graph)} needs {expected:,} features in the last dimension of its input (its weight "
                f"is {expected:,} wide) and gets a {shape_text(got)} tensor ({got[-1]:,}, from "
                f"{_features_source(got[-1], finished)}). {_GRAPH_FIX}")
    if len(got) > 2:
        return (f"{_ordinal(row, rows)} ({_name(row)}) expects {expected:,} features but gets a "
                f"{shape_text(got[1:])} map, and a Linear acts on its last dimension ({got[-1]:,}). "
                f"Put nn.Flatten() before it; it will then get {shape_text(got[1:])} = {prod(got[1:]):,} features.")
    source = _features_source(got[-1], finished)
    return (f"{_ordinal(row, rows)} ({_name(row)}) expects {expected:,} features and the layer before gives "
            f"{source}. Set its in_features to {got[-1]:,}, or change the input size so that "
            f"{expected:,} features reach it.")


def _windowed(row: LayerRow, graph: bool) -> str | None:
    got, a = row.input_shape, row.attributes
    if not got or len(got) < 3:
        return None
    if row.type in _CONV and a.get("in_channels") not in (None, got[1]) and graph:
        return (f"{_layer(row, graph)} needs {a['in_channels']} input channels (its weight says so) and gets a "
                f"{shape_text(got)} input with {got[1]}: the graph's input or the node before does not match it.")
    if row.type in _CONV and a.get("in_channels") not in (None, got[1]):
        return (f"the layer {row.path} ({row.type}) expects {a['in_channels']} input channels and the layer "
                f"before gives {got[1]} (a {shape_text(got[1:])} map). Set its in_channels to {got[1]}.")
    kernel, padding, dilation = _pair(a.get("kernel_size")), _pair(a.get("padding"), 0), _pair(a.get("dilation"))
    sides = got[-2:]
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(side + 2 * p < r for side, p, r in zip(sides, padding, reach)):
        remedy = ("give the graph a larger input" if graph else
                  "give the network a larger input, or use less downsampling before this layer")
        return (f"{_layer(row, graph)} got a {shape_text(got)} input: its {shape_text(sides)} map, "
                f"padded by {shape_text(padding)}, is smaller than its {shape_text(reach)} window. It needs a map "
                f"of at least {shape_text([max(r - 2 * p, 1) for r, p in zip(reach, padding)])}: {remedy}.")
    return None


def _norm(row: LayerRow, graph: bool) -> str | None:
    got, expected = row.input_shape, row.attributes.get("num_features")
    if not got or len(got) < 2 or expected in (None, got[1]):
        return None
    if graph:
        return (f"{_layer(row, graph)} normalises {expected} channels (its scale says so) and gets a "
                f"{shape_text(got)} input with {got[1]}: the node before does not match it.")
    return (f"the layer {row.path} ({row.type}) normalises {expected} channels and the layer before gives "
            f"{got[1]}. Set its num_features to {got[1]}.")


def _reshape(row: LayerRow, message: str, graph: bool) -> str | None:
    match = _INVALID_RESHAPE.search(message)
    got = row.input_shape
    if not match or not got:
        return None
    wanted = [int(v) for v in match[1].split(",")]
    where = f"{_layer(row, graph)} got a {shape_text(got)} input"
    for side in dict.fromkeys(got[-3:]):
        for count, size in zip(wanted, wanted[1:]):
            if size > 1 and count == side // size and side % size:
                return (f"{where} and cuts its sides of {side} into windows of {size}: {side} is not a multiple "
                        f"of {size} ({count} windows cover {count * size}). It needs sides that are multiples "
                        f"of {size}: choose an input size that leads to such a map here.")
    return f"{where} and cannot arrange it as {shape_text(wanted)}."


def explain_failure(exc: BaseException, running: list[LayerRow], rows: list[LayerRow], graph: bool = False) -> str:
    """A sentence naming the layer, what it got and what it needs; PyTorch's
    own message (with the layer and shape) where no rule knows better.
    ``graph``: the rows are an uploaded ONNX graph's nodes, whose weights the
    reader cannot edit: the remedies say so instead of 'set its in_channels'."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not running:
        return message
    row = running[-1]
    finished = [r for r in rows if r.output_shape is not None and r.is_leaf]
    for explanation in (
        _linear(row, rows, finished, graph) if row.type in _LINEAR else None,
        _windowed(row, graph) if row.type in _WINDOWED else None,
        _norm(row, graph) if row.type in _NORM else None,
        _reshape(row, message, graph),
    ):
        if explanation:
            return explanation
    return f"{_layer(row, graph)} got a {shape_text(row.input_shape)} input and fails: {message}"
