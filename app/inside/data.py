"""The inside views' data: a convolution's kernels, a layer's feature maps,
an explanation of a prediction, and the page's choices. The ``*_job``
functions run on the InsideWorker's thread (they touch its models); the
page's data comes from the analysis alone (no weights loaded)."""

from __future__ import annotations

import base64
import io
import time
from functools import cache
from urllib.parse import quote

import numpy as np
import torch

from app.analysis_cache import AnalysisCache
from app.errors import InvalidImage, InvalidParameter, WeightsUnavailable
from app.images import decode_image
from app.inside.schemas import (ChannelStatistics, Crop, ExplainResponse, FeatureMapsResponse, FiltersResponse,
                                Grid, Heatmap, InsidePage, KernelStatistics, LayerChoice, Target)
from app.inside.worker import EagerModel, InsideWorker
from app.zoo.data import analysis_for
from models.build import build_on_meta
from models.catalog import ModelEntry
from models.digits import DigitPreprocessing, lenet_input
from models.explain import METHODS, explain, grey_baseline, unavailable_methods
from models.feature_maps import draw_feature_maps
from models.kernels import LayerError, applied_padding, conv_paths, draw_kernels
from models.preprocess import Preprocessing, preprocessing_for
from models.tiles import GridLayout
from models.weights import WeightsError, weights_status

HEATMAP_DECIMALS = 4


def require_weights(entry: ModelEntry) -> None:
    """409 weights_unavailable at once, before any work is queued."""
    status = weights_status(entry)
    if not status.available:
        raise WeightsUnavailable(f"{entry.name} has no trained weights here, so there is nothing inside to show: "
                                 f"{status.reason}")


def _eager(worker: InsideWorker, entry: ModelEntry) -> EagerModel:
    try:
        return worker.model(entry)
    except WeightsError as exc:  # the file went away or would not load
        raise WeightsUnavailable(f"{entry.name}'s weights would not load: {exc}") from None


def _predictor(worker: InsideWorker, entry: ModelEntry):
    try:
        return worker.predictor(entry)
    except WeightsError as exc:
        raise WeightsUnavailable(f"{entry.name}'s weights would not load: {exc}") from None


def _grid(layout: GridLayout) -> Grid:
    return Grid(count=layout.count, columns=layout.columns, rows=layout.rows, tile_width=layout.tile_width,
                tile_height=layout.tile_height, gap=layout.gap, width=layout.width, height=layout.height)


@cache
def _conv_paths(entry: ModelEntry) -> tuple[str, ...]:
    return tuple(conv_paths(build_on_meta(entry)))


def _applied_padding(cache: AnalysisCache, entry: ModelEntry, model, path: str) -> list[int] | None:
    """[top, bottom, left, right] the convolution adds at the model's input
    size (its input's H x W from the analysis); None where it never runs."""
    row = next((row for row in analysis_for(cache, entry).layers if row.path == path), None)
    if row is None or not row.input_shape or len(row.input_shape) != 4:
        return None
    return applied_padding(model.get_submodule(path), *row.input_shape[2:])


def filters_job(worker: InsideWorker, cache: AnalysisCache, entry: ModelEntry,
                layer: str | None) -> tuple[FiltersResponse, bytes]:
    """The kernels of ``layer`` (default: the first convolution) and their PNG grid."""
    model = _eager(worker, entry).module
    try:
        picture = draw_kernels(model, layer, sees_rgb=entry.input_size[0] == 3)
    except LayerError as exc:
        raise InvalidParameter(str(exc)) from None
    stats = picture.stats
    response = FiltersResponse(
        model=entry.id, layer=picture.layer, shape=picture.shape, groups=picture.groups, stride=picture.stride,
        padding=picture.padding, padding_applied=_applied_padding(cache, entry, model, picture.layer),
        dilation=picture.dilation, bias=picture.bias, rgb=picture.rgb,
        colour_scale=picture.colour_scale, shown_out=picture.shown_out, shown_in=picture.shown_in,
        zoom=picture.zoom, grid=_grid(picture.layout),
        statistics=KernelStatistics(count=stats.count, mean=stats.mean, std=stats.std, min=stats.min, max=stats.max,
                                    abs_mean=stats.abs_mean, filter_norms=stats.filter_norms),
        png_url=f"/api/models/{entry.id}/filters.png?layer={quote(picture.layer)}",
        conv_layers=list(_conv_paths(entry)))
    return response, picture.png


def _input(entry: ModelEntry, data: bytes, max_pixels: int, device: torch.device):
    """The decoded upright image and the model's input tensor (1, C, H, W)."""
    image = decode_image(data, max_pixels)
    try:
        tensor = preprocessing_for(entry)(image)[None].to(device)
    except ValueError as exc:  # e.g. a digit model's preprocessing finds no ink
        raise InvalidImage(str(exc)) from None
    if device.type == "cpu":
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return image, tensor


def feature_maps_job(worker: InsideWorker, cache: AnalysisCache, entry: ModelEntry, data: bytes, layer: str,
                     max_pixels: int) -> tuple[FeatureMapsResponse, bytes]:
    """Every channel of ``layer``'s output on the image, with the receptive
    field of one cell from the model's analysis."""
    started = time.perf_counter()
    _, x = _input(entry, data, max_pixels, worker.device)
    model = _eager(worker, entry).module
    try:
        maps = draw_feature_maps(model, x, layer)
    except LayerError as exc:
        raise InvalidParameter(str(exc)) from None
    row = next((row for row in analysis_for(cache, entry).layers if row.path == layer), None)
    response = FeatureMapsResponse(
        model=entry.id, layer=maps.layer, type=maps.type, shape=maps.shape,
        receptive_field=row.receptive_field if row else None, jump=row.jump if row else None,
        input_size=list(x.shape[1:]), grid=_grid(maps.layout),
        channels=[ChannelStatistics(min=c.min, max=c.max, mean=c.mean) for c in maps.channels],
        png="data:image/png;base64," + base64.b64encode(maps.png).decode("ascii"),
        timing_ms=(time.perf_counter() - started) * 1000)
    return response, maps.png


def _cam_layers(cache: AnalysisCache, entry: ModelEntry) -> tuple[list[str], str | None]:
    """Layers whose output is a map of more than one cell (Grad-CAM can use
    any), in forward order, and the default: the last such leaf layer."""
    paths: list[str] = []
    default = None
    for row in analysis_for(cache, entry).layers:
        shape = row.output_shape
        if row.executed and shape and len(shape) == 4 and shape[2] * shape[3] > 1:
            if row.path not in paths:
                paths.append(row.path)
            default = row.path if row.is_leaf else default
    return paths, default


def parse_method(text: str | None) -> str:
    method = text or "gradcam"
    if method not in METHODS:
        raise InvalidParameter(f"method must be one of {', '.join(METHODS)}; got {method[:40]!r}.")
    return method


def parse_target(text: str | None) -> int | None:
    if text in (None, ""):
        return None
    if not text.isdigit():
        raise InvalidParameter(f"target must be a class index (a whole number from 0); got {text[:20]!r}.")
    return int(text)


def _png_data_url(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _occluder(preprocessing: Preprocessing | DigitPreprocessing) -> torch.Tensor:
    """Occlusion's square (1, C, 1, 1) in input units: mid-grey for a photo
    net; for the digit net, blank paper (the input of an empty digit), so a
    square erases the ink it covers."""
    if isinstance(preprocessing, DigitPreprocessing):
        return lenet_input(np.zeros((1, 8, 8), np.float32))[:, :, :1, :1]
    return grey_baseline(preprocessing.mean, preprocessing.std)


def _input_region(preprocessing: Preprocessing | DigitPreprocessing, image) -> tuple[float, float, float, float]:
    """(x, y, width, height) of the model's input in the upright image's
    pixels: the centre crop, or for the digit net the square its redrawn
    input spans around the ink (models/digits.py input_region)."""
    if isinstance(preprocessing, DigitPreprocessing):
        try:
            return preprocessing.input_region(image)
        except ValueError as exc:
            raise InvalidImage(str(exc)) from None
    return preprocessing.crop_box(*image.size)


def _unavailable_methods(cache: AnalysisCache, entry: ModelEntry) -> dict[str, str]:
    return unavailable_methods(row.type for row in analysis_for(cache, entry).layers)


def explain_job(worker: InsideWorker, cache: AnalysisCache, entry: ModelEntry, data: bytes, method: str,
                target: int | None, layer: str | None, max_pixels: int, with_crop: bool = False) -> ExplainResponse:
    """``method``'s heatmap for class ``target`` (default: the top-1) over the
    input crop (the digit net: over the square its redrawn input spans);
    ``with_crop``: the model's input too, as a PNG (for a browser that cannot
    decode the upload, e.g. Chromium and TIFF)."""
    started = time.perf_counter()
    refused = _unavailable_methods(cache, entry)
    if method in refused:
        raise InvalidParameter(f"{method} does not apply to {entry.name}: {refused[method]}")
    preprocessing = preprocessing_for(entry)
    image, x = _input(entry, data, max_pixels, worker.device)
    loaded = _eager(worker, entry)
    cam_layers, default_layer = _cam_layers(cache, entry)
    logits = _predictor(worker, entry).logits if method == "occlusion" else None
    try:
        result = explain(loaded.module, x, method, target, layer or default_layer,
                         grey=_occluder(preprocessing), cam_layers=cam_layers, logits=logits)
    except (LayerError, ValueError) as exc:
        raise InvalidParameter(str(exc)) from None
    height, width = result.heatmap.shape
    x0, y0, crop_w, crop_h = _input_region(preprocessing, image)
    return ExplainResponse(
        model=entry.id, method=method,
        target=Target(index=result.target, label=loaded.categories[result.target], probability=result.probability),
        heatmap=Heatmap(width=width, height=height,
                        values=[round(v, HEATMAP_DECIMALS) for v in result.heatmap.flatten().tolist()]),
        crop=Crop(x=x0, y=y0, width=crop_w, height=crop_h), layer=result.layer, image=list(image.size),
        crop_png=_png_data_url(preprocessing.input_picture(image)) if with_crop else None,
        timing_ms=(time.perf_counter() - started) * 1000)


def _preprocessing(entry: ModelEntry):
    try:
        return preprocessing_for(entry)
    except ValueError:  # no weights, hence no preprocessing
        return None


def inside_page_data(cache: AnalysisCache, entry: ModelEntry) -> InsidePage:
    """What the page offers for ``entry``: its convolutions, its map-shaped
    layers with their receptive fields, Grad-CAM's layers, the methods."""
    status = weights_status(entry)
    choices: dict[str, LayerChoice] = {}
    for row in analysis_for(cache, entry).layers:
        if row.executed and row.output_shape and len(row.output_shape) == 4 and row.path not in choices:
            choices[row.path] = LayerChoice(path=row.path, type=row.type, output_shape=row.output_shape[1:],
                                            receptive_field=row.receptive_field)
    cam_layers, default_layer = _cam_layers(cache, entry)
    refused = _unavailable_methods(cache, entry) if status.available else {}
    return InsidePage(
        model=entry.id, name=entry.name, weights=status.status, available=status.available, reason=status.reason,
        input_size=list(entry.input_size), conv_layers=list(_conv_paths(entry)), map_layers=list(choices.values()),
        cam_layers=cam_layers, default_cam_layer=default_layer,
        methods=[method for method in METHODS if method not in refused] if status.available else [],
        unavailable_methods=refused, input_redrawn=isinstance(_preprocessing(entry), DigitPreprocessing))
