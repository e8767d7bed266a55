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
from app.lab.lessons import (OUTPUT_SIZE_PRESETS, BottleneckLesson, FactorisedLesson, MobileNetGrid,
                              OutputSizeLesson, Preset, SeparableLesson, StackLesson, bottleneck_data,
                              factorised_data, inception_presets, mobilenet_data, output_size_data, separable_data,
                              stack_data)
from app.zoo.data import analysis_for
from models.catalog import ModelEntry
from models.registry import get_entry, list_models


class GrowthPoint(BaseModel):
    """A layer after which the receptive field or the jump changed."""
    path: str
    type: str
    output_shape: list[int] | None
    receptive_field: int
    jump: int


class GrowthLesson(BaseModel):
    model: str
    name: str
    input_size: int      # pixels per side
    points: list[GrowthPoint]
    figure: dict[str, Any]


def growth_data(cache: AnalysisCache, entry: ModelEntry) -> GrowthLesson:
    """The receptive field layer by layer through ``entry``, as its layers JSON gives it."""
    analysis = analysis_for(cache, entry)
    points: list[GrowthPoint] = []
    for row in analysis.layers:
        if not (row.is_leaf and row.executed) or row.receptive_field is None:
            continue
        if points and (points[-1].receptive_field, points[-1].jump) == (row.receptive_field, row.jump):
            continue
        points.append(GrowthPoint(path=row.path, type=row.type, output_shape=row.output_shape,
                                  receptive_field=row.receptive_field, jump=row.jump))
    size = analysis.input_shape[-1]
    return GrowthLesson(model=entry.id, name=entry.name, input_size=size, points=points,
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
        models=[ZooLink(id=e.id, name=e.name) for e in list_models()],
        factorised=factorised_data(n=5, channels=64, filters=64, size=17),
        separable=separable_data(in_channels=512, out_channels=512, kernel=3, size=14),
        mobilenet=mobilenet_data(),
        links={section: [ZooLink(id=i, name=get_entry(i).name) for i in ids] for section, ids in LINKS.items()},
    )
