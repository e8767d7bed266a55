"""The JSON shapes of the inside views: filters, feature maps, explanations
(shared/API.md's "Inside a network" contract, extended) and the page's data."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Grid(BaseModel):
    """How the PNG is laid out: tile i at row i // columns, column i % columns."""

    count: int
    columns: int
    rows: int
    tile_width: int = Field(description="pixels of one tile in the PNG, gaps excluded")
    tile_height: int
    gap: int
    width: int = Field(description="pixels of the whole PNG")
    height: int


class KernelStatistics(BaseModel):
    count: int = Field(description="weights in the layer, C_out x C_in/groups x kH x kW")
    mean: float
    std: float
    min: float
    max: float
    abs_mean: float
    filter_norms: list[float] = Field(description="L2 norm of each output channel's kernel (C_out values)")


class FiltersResponse(BaseModel):
    model: str
    layer: str
    shape: list[int] = Field(description="[C_out, C_in/groups, kH, kW]")
    groups: int
    stride: list[int]
    padding: str | list[int] = Field(
        description="as declared: [pH, pW] pixels on each side, or \"same\" (TF's 'SAME': timm's Conv2dSame, "
                    "whose module says 0 but pads in its forward pass) / \"valid\"")
    padding_applied: list[int] | None = Field(
        None, description="[top, bottom, left, right] zero pixels the layer adds at the model's input size "
                          "(TF 'SAME' may add the odd one at the bottom and right); null where it never runs")
    dilation: list[int]
    bias: bool
    rgb: bool = Field(description="each filter drawn as one colour tile (the layer sees the RGB image)")
    colour_scale: float | None = Field(
        description="|weight| drawn fully red (+) or blue (-); null for RGB tiles, each stretched on its own")
    shown_out: int = Field(description="output channels drawn (all in the statistics)")
    shown_in: int = Field(description="input channels drawn per output channel")
    zoom: int = Field(description="PNG pixels per kernel element")
    grid: Grid
    statistics: KernelStatistics
    png_url: str = Field(description="the grid as a PNG")
    conv_layers: list[str] = Field(description="every convolution's path, for ?layer=")


class ChannelStatistics(BaseModel):
    min: float
    max: float
    mean: float


class FeatureMapsResponse(BaseModel):
    model: str
    layer: str
    type: str
    shape: list[int] = Field(description="[C, H, W] of the layer's output")
    receptive_field: int | None = Field(
        description="input pixels (one side) that one cell of these maps sees; null where not a map of the input")
    jump: int | None = Field(description="input pixels between neighbouring cells")
    input_size: list[int] = Field(description="[C, H, W] the model was fed")
    grid: Grid
    channels: list[ChannelStatistics] = Field(description="per channel, before each tile is stretched to 0..255")
    png: str = Field(description="the tiles as one PNG, a data: URL (POST .../feature-maps.png gives the bytes)")
    timing_ms: float


class Target(BaseModel):
    index: int
    label: str
    probability: float = Field(description="softmax probability of this class on the crop, 0..1")


class Heatmap(BaseModel):
    width: int
    height: int
    values: list[float] = Field(description="row-major, height x width values in [0, 1] over the input crop")


class Crop(BaseModel):
    """Where the model's input crop lies in the original image (after EXIF orientation), in its pixels."""

    x: float
    y: float
    width: float
    height: float


class ExplainResponse(BaseModel):
    model: str
    method: Literal["gradcam", "occlusion", "guided_backprop", "deconvnet"]
    target: Target
    heatmap: Heatmap
    crop: Crop
    layer: str | None = Field(description="Grad-CAM's layer; null for the other methods")
    image: list[int] = Field(description="[width, height] of the original image after EXIF orientation")
    crop_png: str | None = Field(
        None, description="the model's input crop (upright, before normalisation) as a PNG data: URL, when asked "
                          "with crop_png=true; for clients that cannot decode the upload themselves")
    timing_ms: float


class LayerChoice(BaseModel):
    path: str
    type: str
    output_shape: list[int] | None
    receptive_field: int | None


class InsidePage(BaseModel):
    model: str
    name: str
    weights: Literal["available", "downloadable", "none"]
    available: bool
    reason: str
    input_size: list[int]
    conv_layers: list[str] = Field(description="convolutions whose kernels can be drawn")
    map_layers: list[LayerChoice] = Field(description="layers whose output is a map of channels (feature maps)")
    cam_layers: list[str] = Field(description="leaf layers with a spatial map of more than one cell (Grad-CAM)")
    default_cam_layer: str | None
    input_redrawn: bool = Field(
        False, description="the input is redrawn from the image (LeNet-5's digit), not a crop of it: heatmaps "
                           "are best drawn over the input itself (crop_png=true)")
    methods: list[str] = Field(description="explanation methods that apply to this model; none without weights")
    unavailable_methods: dict[str, str] = Field(
        default_factory=dict, description="methods that cannot apply to this model, each with why")
