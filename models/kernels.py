"""A convolution's kernels as pictures, with their statistics.

The first convolution of an image model sees RGB, so each of its filters
(C_in = 3) is drawn as one colour tile, as in AlexNet's figure 3 of the 96
first-layer filters; any other convolution is drawn as a grid of its 2-D
kernels, one row per output channel and one column per input channel of its
group, coloured blue (negative) - white - red (positive) on one scale for
the layer. Kernels with one input channel each (depthwise convolutions, a
greyscale first layer) are drawn as a square grid of their output channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.tiles import GridLayout, diverging, draw_grid, normalise_each, png_bytes, square_layout

MAX_ROWS = 64  # output channels drawn in a kernel grid (the statistics cover all)
MAX_COLUMNS = 64  # input channels drawn per output channel
MAX_DEPTHWISE = 1024  # depthwise kernels drawn
TILE_PIXELS = 24  # a kernel is enlarged (nearest) to about this many pixels a side


class LayerError(ValueError):
    """A layer path that names no module of the right kind; the message lists what would do."""


def conv_paths(model: nn.Module) -> list[str]:
    """Every 2-D convolution's module path, in definition order."""
    return [path for path, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def conv_layer(model: nn.Module, path: str | None) -> tuple[str, nn.Conv2d]:
    """The convolution at ``path``; None: the first one. Raises LayerError."""
    paths = conv_paths(model)
    if not paths:
        raise LayerError("This model has no 2-D convolution.")
    path = paths[0] if path in (None, "") else path
    if path not in paths:
        raise LayerError(f"{path[:80]!r} is not a convolution of this model; its {len(paths)} convolutions "
                         f"are {', '.join(paths[:4])}{' ...' if len(paths) > 4 else ''} (the layer table lists all).")
    return path, model.get_submodule(path)


def _tf_same(conv: nn.Conv2d) -> bool:
    """timm's Conv2dSame / Conv2dSameExport: TF's 'SAME' padding, computed
    from the input's size in the forward pass (the module says padding 0)."""
    from timm.layers.conv2d_same import Conv2dSame, Conv2dSameExport

    return isinstance(conv, (Conv2dSame, Conv2dSameExport))


def padding_kind(conv: nn.Conv2d) -> str | list[int]:
    """What the layer's padding is declared as: "same" for TF-'SAME' convolutions (whose module says 0),
    PyTorch's "same" / "valid", or [pH, pW] pixels on each side."""
    if _tf_same(conv):
        return "same"
    return conv.padding if isinstance(conv.padding, str) else list(conv.padding)


def applied_padding(conv: nn.Conv2d, height: int, width: int) -> list[int]:
    """The zero pixels the layer adds on an input of ``height`` x ``width``:
    [top, bottom, left, right]. TF 'SAME' (timm's Conv2dSame, by timm's own
    ``pad_same_arg``): pad = max((ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0),
    the odd pixel at the bottom and right; PyTorch's padding="same":
    d * (k - 1) split the same way; "valid": none; numbers: both sides each."""
    if _tf_same(conv):
        from timm.layers.padding import pad_same_arg

        left, right, top, bottom = pad_same_arg([height, width], conv.kernel_size, conv.stride, conv.dilation)
        return [int(top), int(bottom), int(left), int(right)]
    if conv.padding == "valid":
        return [0, 0, 0, 0]
    if conv.padding == "same":
        total_h, total_w = (d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size))
        return [total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2]
    pad_h, pad_w = conv.padding
    return [pad_h, pad_h, pad_w, pad_w]


@dataclass(frozen=True)
class KernelStats:
    """Of all C_out x C_in/groups x kH x kW weights, not only those drawn."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    abs_mean: float
    filter_norms: list[float]  # L2 norm of each output channel's kernel, C_out values


@dataclass(frozen=True)
class KernelPicture:
    layer: str
    shape: list[int]  # [C_out, C_in / groups, kH, kW]
    groups: int
    stride: list[int]
    padding: str | list[int]
    dilation: list[int]
    bias: bool
    rgb: bool  # each filter drawn as one colour tile
    colour_scale: float | None  # |weight| drawn full red/blue; None for RGB tiles (each filter scaled alone)
    shown_out: int
    shown_in: int
    zoom: int  # screen pixels per kernel element
    layout: GridLayout
    stats: KernelStats
    png: bytes


def kernel_stats(weight: torch.Tensor) -> KernelStats:
    w = weight.detach().float()
    return KernelStats(
        count=w.numel(), mean=w.mean().item(), std=w.std(unbiased=False).item(), min=w.min().item(),
        max=w.max().item(), abs_mean=w.abs().mean().item(),
        filter_norms=[round(v, 6) for v in w.reshape(w.shape[0], -1).norm(dim=1).tolist()])


def _enlarge(tiles: torch.Tensor, zoom: int) -> torch.Tensor:
    """(N, h, w[, 3]) -> each element repeated zoom x zoom times."""
    return tiles.repeat_interleave(zoom, dim=1).repeat_interleave(zoom, dim=2)


def draw_kernels(model: nn.Module, path: str | None = None, sees_rgb: bool = True) -> KernelPicture:
    """The kernels of the convolution at ``path`` (default the first) as one
    PNG grid. ``sees_rgb``: the model's input is an RGB image, so its first
    convolution with 3 input channels gets colour tiles. Raises LayerError."""
    path, conv = conv_layer(model, path)
    weight = conv.weight.detach().float().cpu()
    c_out, c_in, kh, kw = weight.shape
    zoom = max(1, TILE_PIXELS // max(kh, kw))
    rgb = sees_rgb and c_in == 3 and path == conv_paths(model)[0]
    colour_scale = None
    if rgb:
        # (C_out, 3, kh, kw) -> (C_out, kh, kw, 3), each filter stretched to 0..255 as a whole
        tiles = normalise_each(weight.permute(0, 2, 3, 1).reshape(c_out, kh, kw * 3)).reshape(c_out, kh, kw, 3)
        shown_out, shown_in = c_out, 3
        layout = square_layout(c_out, kh * zoom, kw * zoom, gap=2)
    else:
        if c_in == 1:  # depthwise or greyscale input: one kernel per output channel
            shown_out, shown_in = min(c_out, MAX_DEPTHWISE), 1
            layout = square_layout(shown_out, kh * zoom, kw * zoom, gap=1)
        else:
            shown_out, shown_in = min(c_out, MAX_ROWS), min(c_in, MAX_COLUMNS)
            layout = GridLayout(shown_out * shown_in, shown_in, shown_out, kh * zoom, kw * zoom, gap=1)
        shown = weight[:shown_out, :shown_in].reshape(-1, kh, kw)
        colour_scale = shown.abs().max().item()
        tiles = diverging(shown, colour_scale)
    image = draw_grid(_enlarge(tiles, zoom).numpy().astype(np.uint8), layout)
    return KernelPicture(
        layer=path, shape=[c_out, c_in, kh, kw], groups=conv.groups, stride=list(conv.stride),
        padding=padding_kind(conv),
        dilation=list(conv.dilation), bias=conv.bias is not None, rgb=rgb, colour_scale=colour_scale,
        shown_out=shown_out, shown_in=shown_in, zoom=zoom, layout=layout, stats=kernel_stats(weight),
        png=png_bytes(image))
