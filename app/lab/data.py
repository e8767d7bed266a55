"""The lab page's data: every lesson at its first preset, the presets, the
zoo models where each idea appears, and receptive fields through a real zoo
model (from the analysis cache)."""

from __future__ import annotations

import functools
import threading
from typing import Any

from pydantic import BaseModel

from app.analysis_cache import AnalysisCache
from app.lab.figures import growth_figure
from app.lab.lessons import (LIMITS, OUTPUT_SIZE_PRESETS, BottleneckLesson, FactorisedLesson, MobileNetGrid,
                              OutputSizeLesson, Preset, SeparableLesson, StackLesson, bottleneck_data,
                              factorised_data, inception_presets, mobilenet_data, output_size_data, separable_data,
                              stack_data)
from app.zoo.data import analysis_for
from app.names import natural_key
from models.catalog import ModelEntry
from models.registry import get_entry, list_models


class GrowthPoint(BaseModel):
    """A layer after which the receptive field or the jump changed."""
    path: str
    type: str
    output_shape: list[int] | None
    receptive_field: int
    jump: int
    receptive_field_global: bool = False  # every position mixed: the whole input, and no growth after


class GrowthLesson(BaseModel):
    model: str
    name: str
    input_size: int      # pixels per side
    points: list[GrowthPoint]
    # The last spatial map before global mixing (ResNet-50: layer4, 427 px): what "its feature map sees" means.
    last_feature_map: GrowthPoint | None = None
    figure: dict[str, Any]


def _point(row) -> GrowthPoint:
    return GrowthPoint(path=row.path, type=row.type, output_shape=row.output_shape, receptive_field=row.receptive_field,
                       jump=row.jump, receptive_field_global=row.receptive_field_global)


def _last_feature_map(rows: list) -> GrowthPoint | None:
    """The last executed 4-D map not yet mixed globally, named by its outermost module with the same output."""
    maps = [r for r in rows if r.executed and r.receptive_field is not None and not r.receptive_field_global
            and r.output_shape and len(r.output_shape) == 4]
    if not maps:
        return None
    last = maps[-1]
    same = [r for r in maps if last.path.startswith(r.path + ".") and
            (r.output_shape, r.receptive_field, r.jump) == (last.output_shape, last.receptive_field, last.jump)]
    return _point(min(same, key=lambda r: r.depth) if same else last)


def growth_data(cache: AnalysisCache, entry: ModelEntry) -> GrowthLesson:
    """The receptive field layer by layer through ``entry``, as its layers JSON gives it. A point is a
    module with no executed children (so attention inside MultiheadAttention is credited to it, not to
    the Dropout after it) where the field or the jump changed, up to the first global one."""
    analysis = analysis_for(cache, entry)
    rows = [r for r in analysis.layers if r.executed]
    parents = {r.path.rpartition(".")[0] for r in rows}
    points: list[GrowthPoint] = []
    for row in rows:
        if row.path in parents or row.receptive_field is None:
            continue
        if points and (points[-1].receptive_field_global or
                       (points[-1].receptive_field, points[-1].jump) == (row.receptive_field, row.jump)):
            continue
        points.append(_point(row))
    size = analysis.input_shape[-1]
    return GrowthLesson(model=entry.id, name=entry.name, input_size=size, points=points,
                        last_feature_map=_last_feature_map(analysis.layers),
                        figure=growth_figure(entry.name, size, [p.model_dump() for p in points]))


class ZooLink(BaseModel):
    id: str
    name: str


class LabPage(BaseModel):
    bottleneck: BottleneckLesson
    inception_presets: list[Preset]
    output_size: OutputSizeLesson
    output_size_presets: list[Preset]
    receptive_field: StackLesson
    growth: GrowthLesson
    models: list[ZooLink]   # every zoo model, for the growth lesson's picker
    factorised: FactorisedLesson
    separable: SeparableLesson
    mobilenet: MobileNetGrid
    links: dict[str, list[ZooLink]]
    limits: dict[str, int] = LIMITS  # each calculator input's largest value (side, channels, kernel, layers, dilation)


# Where each idea appears in the zoo.
LINKS = {
    "bottleneck": ["googlenet", "inception_v3", "resnet50"],
    "output_size": ["alexnet_paper", "vgg16", "googlenet"],
    "receptive_field": ["vgg16", "resnet18", "resnet50", "densenet121", "googlenet"],
    "factorised": ["inception_v3", "inception_v4", "inception_resnet_v2"],
    "separable": ["mobilenet_v1", "mobilenet_v2", "xception"],
}


_LAB_DATA_LOCK = threading.Lock()


def lab_data(cache: AnalysisCache) -> LabPage:
    """Every lesson at its first preset: the page's initial state and /api/lab.
    Pure given the cache's library versions, so computed once per app (the
    twenty small analyses behind it would otherwise queue behind every other
    request for the interpreter under load), and by one request at a time."""
    with _LAB_DATA_LOCK:
        return _lab_data(cache)


@functools.cache
def _lab_data(cache: AnalysisCache) -> LabPage:
    presets = inception_presets()
    return LabPage(
        bottleneck=bottleneck_data(**presets[0].params),
        inception_presets=presets,
        output_size=output_size_data(**OUTPUT_SIZE_PRESETS[0].params),
        output_size_presets=OUTPUT_SIZE_PRESETS,
        receptive_field=stack_data(kernel=3, layers=3, channels=64, size=56),
        growth=growth_data(cache, get_entry("vgg16")),
        models=[ZooLink(id=e.id, name=e.name) for e in sorted(list_models(), key=lambda e: natural_key(e.name))],
        factorised=factorised_data(n=5, channels=64, filters=64, size=17),
        separable=separable_data(in_channels=512, out_channels=512, kernel=3, size=14),
        mobilenet=mobilenet_data(),
        links={section: [ZooLink(id=i, name=get_entry(i).name) for i in ids] for section, ids in LINKS.items()},
    )
