"""Receptive field and effective stride ("jump") of every tensor in a trace.

Each tensor that descends from the input carries, per spatial dimension
(height, width), a triple (r, j, n): an element sees r x r input pixels (the
theoretical receptive field, which may run past the image into the padding),
neighbouring elements are j input pixels apart, and the feature map it belongs
to is n elements long. A layer with kernel k, stride s and dilation d maps

    r' = r + (k - 1) * d * j        j' = j * s

(Araujo et al., "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019). The triples flow along the aten ops of the same
forward pass that counts MACs, so functional pools (Inception v3), residual
adds and concatenations are all seen. Where paths meet (add, cat) the largest
field wins. Rules beyond that:

- global mixing: once a layer mixes every position of the map (global
  pooling, a linear layer over a flattened map, attention over all tokens, a
  window as large as the map), each element sees the whole input: r' is the
  input's own length along that axis, the axis is marked *global*, and from
  there on the field stops growing (a conv or pool after it cannot see more
  than everything). Global pooling leaves one cell, j' = j * n, n' = 1;
  attention keeps the positions and their jump.
- attention over a w x w window (Swin, MaxViT: T = w * w tokens, fewer than
  the positions) acts as a w x w kernel, r' = r + (w - 1) * j (MaxViT's grid
  attention spreads its window wider: there this is a lower bound).
- a linear layer applied at each position (ConvNeXt's MLP on channels-last
  maps, a transformer's MLP: as many rows as positions) is a 1x1
  convolution: nothing changes.
- a strided slice along a spatial axis (Swin's patch merging takes every
  other row and column) multiplies the jump by its step.
- a broadcast operand (a squeeze-and-excitation gate of shape C x 1 x 1)
  scales each position but brings no spatial context: it is ignored.
"""

from __future__ import annotations

from math import ceil, isqrt
from typing import Any, NamedTuple

import torch

from models.meta import flat_leaves

aten = torch.ops.aten

_ATTR = "_convzoo_rf"


class Dim(NamedTuple):
    """One spatial axis of a tensor's field."""
    rf: int          # input pixels one element sees
    jump: int        # input pixels between neighbouring elements
    length: int      # elements along this axis of the map
    extent: int      # the network input's length along this axis
    whole: bool = False  # every position has been mixed: rf == extent from here on


Field = tuple[Dim, Dim]  # (height, width)


def _field(t: Any) -> Field | None:
    return getattr(t, _ATTR, None) if isinstance(t, torch.Tensor) else None


def seed(x: torch.Tensor) -> None:
    """Mark the network input: each pixel sees itself."""
    h, w = x.shape[-2], x.shape[-1]
    setattr(x, _ATTR, (Dim(1, 1, h, h), Dim(1, 1, w, w)))


def of(output: Any) -> tuple[int, int, bool] | None:
    """(receptive field, jump, global) of a module's output -- the larger of
    height and width, and whether every position of the input has been mixed
    on both axes -- or None when the output does not descend from the input."""
    for t in flat_leaves(output, []):
        if isinstance(t, torch.Tensor):
            field = _field(t)
            if field is None:
                return None
            return max(field[0].rf, field[1].rf), max(field[0].jump, field[1].jump), field[0].whole and field[1].whole
    return None


def _pair(value: Any, default: int) -> tuple[int, int]:
    if value is None or value == []:
        return default, default
    if isinstance(value, int):
        return value, value
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _grown(dim: Dim, rf: int, jump: int, length: int, mixes_all: bool = False) -> Dim:
    """The axis after a layer: a global axis stays at the whole input."""
    whole = dim.whole or mixes_all
    return Dim(dim.extent if whole else rf, jump, length, dim.extent, whole)


def _windowed(field: Field, kernel, stride, dilation, padding, out: torch.Tensor) -> Field:
    k, s, d, p = _pair(kernel, 1), _pair(stride, 0), _pair(dilation, 1), _pair(padding, 0)
    s = tuple(si or ki for si, ki in zip(s, k))  # a pool's stride defaults to its kernel
    sizes = out.shape[-2:]
    # One output cell whose window, after the padding, reaches the map's last row: it mixes them all.
    return tuple(_grown(dim, dim.rf + (k[i] - 1) * d[i] * dim.jump, dim.jump * s[i], sizes[i],
                        sizes[i] == 1 and (k[i] - 1) * d[i] - p[i] >= dim.length - 1)
                 for i, dim in enumerate(field))


def _global(field: Field) -> Field:
    return tuple(_grown(dim, dim.extent, dim.jump * dim.length, 1, True) for dim in field)


def _attend(field: Field, tokens: int) -> Field:
    positions = field[0].length * field[1].length
    window = isqrt(tokens)
    if tokens >= positions or window * window != tokens:
        return tuple(_grown(dim, dim.extent, dim.jump, dim.length, True) for dim in field)
    return tuple(_grown(dim, dim.rf + (window - 1) * dim.jump, dim.jump, dim.length) for dim in field)


def _strided_slice(field: Field, x: torch.Tensor, dim: int, step: int, out: torch.Tensor) -> Field:
    """The spatial axes are the last adjacent pair of dims sized (n_h, n_w):
    (2, 3) for N x C x H x W, (1, 2) for channels-last N x H x W x C."""
    height, width = field
    shape, dim = list(x.shape), dim % x.dim()
    pairs = [d for d in range(x.dim() - 1) if (shape[d], shape[d + 1]) == (height.length, width.length)]
    if step <= 1 or not pairs:
        return field
    if dim == pairs[-1]:
        return height._replace(jump=height.jump * step, length=out.shape[dim]), width
    if dim == pairs[-1] + 1:
        return height, width._replace(jump=width.jump * step, length=out.shape[dim])
    return field


def _adaptive(field: Field, inp: torch.Tensor, out: torch.Tensor) -> Field:
    """An adaptive pool from n to o cells: windows [floor(i n / o), ceil((i + 1) n / o))."""
    result = []
    for dim, n, o in zip(field, inp.shape[-2:], out.shape[-2:]):
        k = max(ceil((i + 1) * n / o) - (i * n) // o for i in range(o))
        result.append(_grown(dim, dim.rf + (k - 1) * dim.jump, dim.jump * max(n // o, 1), o, k >= n))
    return tuple(result)


def _merge(fields: list[Field]) -> Field:
    """Where paths meet, each element sees the union: the widest path (a global one first)."""
    return tuple(max((f[i] for f in fields), key=lambda dim: (dim.whole, dim.rf, dim.jump)) for i in range(2))


def _spatial_reduction(args) -> bool:
    """mean/amax/sum over both spatial dims of an N x C x H x W map."""
    x, dims = args[0], args[1] if len(args) > 1 else None
    if x.dim() != 4 or not dims:
        return False
    dims = {d % 4 for d in ([dims] if isinstance(dims, int) else dims)}
    return {2, 3} <= dims


_CONV = {aten.convolution.default}
_POOLS = {aten.max_pool2d_with_indices.default, aten.max_pool2d.default, aten.avg_pool2d.default}
_ADAPTIVE = {aten._adaptive_avg_pool2d.default, aten.adaptive_max_pool2d.default}
_REDUCTIONS = {aten.mean.dim, aten.amax.default, aten.sum.dim_IntList}
_LINEAR = {aten.mm.default: 0, aten.addmm.default: 1}
_BATCHED = {aten.bmm.default: 0, aten.baddbmm.default: 1}
_ATTENTION = {aten._scaled_dot_product_flash_attention_for_cpu.default,
              aten._scaled_dot_product_efficient_attention.default,
              aten._scaled_dot_product_flash_attention.default}
_JOIN = {aten.cat.default, aten.stack.default}


def propagate(func, args: tuple, leaves: list, out: Any) -> None:
    """Give every tensor ``func`` produced the field it inherits from its inputs."""
    tagged = [t for t in leaves if _field(t) is not None]
    if not tagged:
        return
    outputs = [t for t in flat_leaves(out, []) if isinstance(t, torch.Tensor)]
    if not outputs:
        return
    first = outputs[0]
    field = _field(args[0]) if args and isinstance(args[0], torch.Tensor) else None
    if func in _CONV and field is not None and args[1].dim() == 4 and not args[6]:
        new = _windowed(field, args[1].shape[-2:], args[3], args[5], args[4], first)
    elif func in _POOLS and field is not None and args[0].dim() >= 3:
        dilation = args[4] if func != aten.avg_pool2d.default and len(args) > 4 else 1
        new = _windowed(field, args[1], args[2] if len(args) > 2 else None, dilation,
                        args[3] if len(args) > 3 else 0, first)
    elif func in _ADAPTIVE and field is not None:
        new = _adaptive(field, args[0], first)
    elif func in _REDUCTIONS and field is not None and _spatial_reduction(args):
        new = _global((field[0]._replace(length=args[0].shape[-2]), field[1]._replace(length=args[0].shape[-1])))
    elif func in _LINEAR:
        x = args[_LINEAR[func]]
        field = _field(x)
        if field is None:
            return
        # One row per position (the analysis runs a batch of one): a 1x1 conv.
        new = field if x.shape[0] >= field[0].length * field[1].length else _global(field)
    elif func in _BATCHED:
        scores = args[_BATCHED[func]]
        new = _merge([_field(t) for t in tagged])
        if scores.shape[-1] == scores.shape[-2]:  # scores @ values: tokens mix
            new = _attend(new, scores.shape[-1])
    elif func in _ATTENTION:
        new = _attend(_merge([_field(t) for t in tagged]), args[1].shape[-2])
    elif func == aten.slice.Tensor and field is not None and len(args) > 4:
        new = _strided_slice(field, args[0], args[1], args[4], first)
    elif func in _JOIN:
        new = _merge([_field(t) for t in tagged])
    else:
        # Elementwise and layout ops: the widest operands carry the field; a
        # broadcast gate (fewer elements) scales without adding context.
        widest = max(t.numel() for t in tagged)
        new = _merge([_field(t) for t in tagged if t.numel() == widest])
    for t in outputs:
        setattr(t, _ATTR, new)
