"""A layer's output on one image, every channel drawn as a small greyscale
tile (each channel stretched from its own min to its own max).

The forward pass stops as soon as the layer has produced its output (a hook
raises), so an early layer costs a fraction of a full pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.kernels import LayerError
from models.tiles import GridLayout, draw_grid, normalise_each, png_bytes, square_layout

MAX_TILE = 128  # larger maps are area-averaged down to this side
MAX_CHANNELS = 4096


class _Captured(Exception):
    """Raised by the hook to end the forward pass early."""


@dataclass(frozen=True)
class ChannelStats:
    min: float
    max: float
    mean: float


@dataclass(frozen=True)
class FeatureMaps:
    layer: str
    type: str
    shape: list[int]  # [C, H, W] of the layer's output (batch of one dropped)
    tile_height: int  # drawn size of one channel (smaller than H, W when they exceed MAX_TILE)
    tile_width: int
    layout: GridLayout
    channels: list[ChannelStats]
    png: bytes


def layer_output(model: nn.Module, x: torch.Tensor, path: str) -> torch.Tensor:
    """The output of the module at ``path`` (its first call) for input ``x``,
    under inference mode. Raises LayerError for an unknown path, a module
    the forward pass never calls, or an output that is not one tensor."""
    try:
        module = model.get_submodule(path) if path else None
    except AttributeError:
        module = None
    if module is None or module is model:
        raise LayerError(f"{path[:80]!r} is not a layer of this model; pick a path from its layer table.")
    captured: list[torch.Tensor] = []

    def hook(_module, _args, output):
        captured.append(output)
        raise _Captured

    handle = module.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            model(x)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise LayerError(f"{path!r} is not called by this model's forward pass, so it has no output to show.")
    output = captured[0]
    if not isinstance(output, torch.Tensor):
        raise LayerError(f"{path!r} returns a {type(output).__name__}, not a tensor; pick another layer.")
    return output


def draw_feature_maps(model: nn.Module, x: torch.Tensor, path: str) -> FeatureMaps:
    """Layer ``path``'s output for ``x`` (1, C_in, H_in, W_in) as a tile grid.
    Raises LayerError when the output is not a (1, C, H, W) map."""
    output = layer_output(model, x, path)
    if output.dim() != 4:
        raise LayerError(f"{path!r} outputs shape {list(output.shape)}, not channels of 2-D maps "
                         f"[N, C, H, W]; pick a convolutional layer.")
    maps = output[0].float()
    channels, height, width = maps.shape
    if channels > MAX_CHANNELS:
        raise LayerError(f"{path!r} has {channels} channels; at most {MAX_CHANNELS} are drawn.")
    stats = [ChannelStats(*values) for values in zip(
        maps.amin(dim=(1, 2)).tolist(), maps.amax(dim=(1, 2)).tolist(), maps.mean(dim=(1, 2)).tolist())]
    tiles = maps
    if max(height, width) > MAX_TILE:
        factor = MAX_TILE / max(height, width)
        tiles = F.interpolate(maps[None], size=(max(1, round(height * factor)), max(1, round(width * factor))),
                              mode="area")[0]
    gap = 1 if tiles.shape[1] < 16 else 2
    layout = square_layout(channels, tiles.shape[1], tiles.shape[2], gap)
    image = draw_grid(normalise_each(tiles).numpy(), layout)
    return FeatureMaps(layer=path, type=type(model.get_submodule(path)).__name__, shape=[channels, height, width],
                       tile_height=tiles.shape[1], tile_width=tiles.shape[2], layout=layout, channels=stats,
                       png=png_bytes(image))
