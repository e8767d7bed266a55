"""Laying many small images out as one grid picture: a layer's kernels or a
layer's feature maps become one PNG the browser shows as is (no floats sent).

A grid is ``columns`` tiles wide, tiles of ``tile_height x tile_width``
pixels with a ``gap`` between them; tile ``i`` sits at row ``i // columns``,
column ``i % columns``, so a client maps a click back to its channel.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

GAP_COLOUR = 255  # white lines between tiles


@dataclass(frozen=True)
class GridLayout:
    count: int  # tiles drawn
    columns: int
    rows: int
    tile_height: int  # pixels of one tile, gaps excluded
    tile_width: int
    gap: int

    @property
    def width(self) -> int:
        return self.columns * self.tile_width + (self.columns - 1) * self.gap

    @property
    def height(self) -> int:
        return self.rows * self.tile_height + (self.rows - 1) * self.gap


def square_layout(count: int, tile_height: int, tile_width: int, gap: int) -> GridLayout:
    """Near-square grid: ceil(sqrt(count)) columns."""
    columns = max(1, math.ceil(math.sqrt(count)))
    return GridLayout(count, columns, max(1, math.ceil(count / columns)), tile_height, tile_width, gap)


def normalise_each(maps: torch.Tensor) -> torch.Tensor:
    """(N, H, W) floats -> uint8, each map scaled from its own min to its own
    max (a constant map is drawn mid-grey)."""
    flat = maps.reshape(maps.shape[0], -1).float()
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(1e-12), torch.full_like(flat, 0.5))
    return (scaled * 255).round_().to(torch.uint8).reshape(maps.shape)


def diverging(values: torch.Tensor, scale: float) -> torch.Tensor:
    """Signed floats -> uint8 RGB (..., 3): -scale blue, 0 white, +scale red
    (the usual colouring of weights, whose sign matters)."""
    t = (values.float() / max(scale, 1e-12)).clamp(-1, 1)
    positive, negative = t.clamp_min(0), (-t).clamp_min(0)
    red = 1 - negative
    green = 1 - positive - negative
    blue = 1 - positive
    return (torch.stack([red, green, blue], dim=-1) * 255).round_().to(torch.uint8)


def draw_grid(tiles: np.ndarray, layout: GridLayout) -> Image.Image:
    """Tiles (N, h, w) greyscale or (N, h, w, 3) RGB uint8 -> one image."""
    channels = tiles.shape[3:] if tiles.ndim == 4 else ()
    canvas = np.full((layout.height, layout.width, *channels), GAP_COLOUR, dtype=np.uint8)
    step_y, step_x = layout.tile_height + layout.gap, layout.tile_width + layout.gap
    for i in range(layout.count):
        y, x = (i // layout.columns) * step_y, (i % layout.columns) * step_x
        canvas[y:y + layout.tile_height, x:x + layout.tile_width] = tiles[i]
    return Image.fromarray(canvas, "RGB" if channels else "L")


def png_bytes(image: Image.Image) -> bytes:
    """PNG at zlib level 1: feature-map grids are up to ~1.5 Mpx and must
    encode in milliseconds; level 6 is 3-4x slower for ~10% smaller files."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
