"""Where the cost of a network sits: each row's own share (a container's
total minus its children's), stages by output stride, and the running totals
along depth that the model and compare pages plot.

Everything is derived from an analysis' rows, whose totals stay the source of
truth: the shares of all rows add up to the model's totals exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.analysis import LayerRow

from app.zoo.schemas import Layer, ProfilePoint, Stage, Totals
from app.zoo.formulas import CONVS, LINEARS, POOLS

# The API's rows or the analysis' own: both carry the fields read here (path, type, depth,
# is_leaf, executed, shapes, params, macs, activation_elements); compare reads the analysis'
# rows directly, sparing a pydantic copy of every row (most of a compare's time for big nets).
Rows = list[Layer] | list[LayerRow]

HEAD = "head"
UNEXECUTED = "not run"


@dataclass
class Share:
    """A row's own parameters and MACs, not counting its children's; a module
    called twice holds its parameters once (at its first call)."""
    params: int
    macs: int
    activation_elements: int


def shares(layers: Rows) -> list[Share]:
    seen: set[str] = set()
    own_params = []
    for layer in layers:
        own_params.append(0 if layer.path in seen else layer.params)
        seen.add(layer.path)
    result = [Share(own_params[i], layer.macs, layer.activation_elements if layer.is_leaf else 0)
              for i, layer in enumerate(layers)]
    stack: list[int] = []
    for i, layer in enumerate(layers):
        while stack and not layer.path.startswith(layers[stack[-1]].path + "."):
            stack.pop()
        if stack:
            parent = result[stack[-1]]
            parent.params -= own_params[i]
            parent.macs -= layer.macs
        stack.append(i)
    return result


def _stride(input_side: int, side: int) -> int:
    """Output stride as a power of two: Inception v3's 73 and 71 at 299 are both 4."""
    return 2 ** max(0, round(math.log2(input_side / side))) if side else 1


def stage_keys(layers: Rows, input_shape: list[int]) -> list[str | None]:
    """Each executed row's stage: the output stride of the main path so far,
    or 'head' once the activations are flat vectors ('not run' for modules
    idle in eval, like Inception v3's auxiliary head). The main path's size
    changes only at convs and pools that take the current size (a
    squeeze-and-excitation branch at 1x1 does not move it) and at Swin's
    patch merging (channels last)."""
    height, width = input_shape[2], input_shape[3]
    current = (height, width)
    keys: list[str | None] = []
    for layer in layers:
        if not layer.executed:
            keys.append(UNEXECUTED)
            continue
        if layer.output_shape is None:
            keys.append(None)
            continue
        out, inp = layer.output_shape, layer.input_shape
        if layer.is_leaf and len(out) == 2:
            keys.append(HEAD)
            continue
        if layer.is_leaf and inp and len(out) == 4:
            if layer.type in CONVS | POOLS and tuple(inp[2:]) == current:
                current = (out[2], out[3])
        if layer.type.startswith("PatchMerging") and inp and tuple(inp[1:3]) == current:
            current = (out[1], out[2])
        keys.append(f"{_stride(height, current[0])}:{current[0]}x{current[1]}")
    return keys


def stages(layers: Rows, input_shape: list[int], totals: Totals) -> list[Stage]:
    """Cost per output stride (224x224 input: stride 4 is 56x56), then the head."""
    bytes_per_element = totals.activation_bytes // max(totals.activation_elements, 1)
    found: dict[str, Stage] = {}
    for layer, share, key in zip(layers, shares(layers), stage_keys(layers, input_shape)):
        if key is None or not (layer.is_leaf or share.params or share.macs):
            continue
        name = key if key in (HEAD, UNEXECUTED) else key.split(":")[0]
        if name not in found:
            if key == HEAD:
                found[name] = Stage(name=HEAD, label="head (flat vectors)", stride=None, height=1, width=1)
            elif key == UNEXECUTED:
                found[name] = Stage(name=UNEXECUTED, label="not run in eval (auxiliary head)", stride=None,
                                    height=0, width=0)
            else:
                size = key.split(":")[1]
                h, w = (int(v) for v in size.split("x"))
                found[name] = Stage(name=f"stride {name}", label=f"stride {name} · {h}×{w}", stride=int(name),
                                    height=h, width=w)
        stage = found[name]
        stage.params += share.params
        stage.macs += share.macs
        stage.activation_bytes += share.activation_elements * bytes_per_element
        stage.layers += 1 if layer.is_leaf else 0
    params = totals.params - sum(s.params for s in found.values())
    macs = totals.macs - sum(s.macs for s in found.values())
    if params or macs:  # held by the model itself, e.g. ViT's class token and position embedding
        found["model"] = Stage(name="model", label="model-level (outside any module)", stride=None, height=1,
                               width=1, params=params, macs=macs)
    return list(found.values())


def profile(layers: Rows, totals: Totals) -> list[ProfilePoint]:
    """Running totals of parameters and MACs against depth, counted in weight
    layers (conv and linear modules) in execution order; it ends at the
    model's totals (ops outside any module, e.g. ViT's class token, last)."""
    points = [ProfilePoint(depth=0, path="input", params=0, macs=0)]
    depth = params = macs = 0
    for layer, share in zip(layers, shares(layers)):
        if layer.is_leaf and layer.executed and layer.type in CONVS | LINEARS:
            depth += 1
        if share.params or share.macs:
            params += share.params
            macs += share.macs
            points.append(ProfilePoint(depth=depth, path=layer.path, params=params, macs=macs))
    if (params, macs) != (totals.params, totals.macs):
        points.append(ProfilePoint(depth=depth, path="(outside any module)", params=totals.params, macs=totals.macs))
    return points


PURE_CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}


@dataclass
class TableRow:
    """How the per-layer table shows a row: blocks fold into one row that opens."""
    layer: Layer
    has_children: bool
    open: bool  # its children show when the page opens
    visible: bool
    block: str  # the folded block it belongs to (the architecture diagram shades these)


def table_rows(layers: Rows, totals: Totals) -> list[TableRow]:
    """Pure containers (Sequential, ModuleList) and a top-level module holding
    over half the parameters (ViT's encoder) start open, so the first view
    lists the model's blocks: a ResNet bottleneck, an Inception module, a
    dense block each show as one row."""
    rows: list[TableRow] = []
    stack: list[TableRow] = []
    for i, layer in enumerate(layers):
        while stack and not layer.path.startswith(stack[-1].layer.path + "."):
            stack.pop()
        has_children = i + 1 < len(layers) and layers[i + 1].path.startswith(layer.path + ".")
        is_open = has_children and (layer.type in PURE_CONTAINERS or (
            layer.depth == 1 and layer.params * 2 > totals.params))
        visible = all(r.open for r in stack)
        closed = next((r for r in stack if not r.open), None)
        if closed is not None:
            block = closed.layer.path
        elif has_children and not is_open:
            block = layer.path
        else:
            block = stack[-1].layer.path if stack else layer.path
        row = TableRow(layer=layer, has_children=has_children, open=is_open, visible=visible, block=block)
        rows.append(row)
        stack.append(row)
    return rows
