"""The accuracy charts' JSON shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class AccuracyPoint(BaseModel):
    id: str
    name: str
    family: str
    year: int | None
    params: int
    macs: int  # at ``resolution``, the side the top-1 was measured at
    top1: float
    top5: float | None
    accuracy_source: str | None
    top1_per_mparams: float  # top-1 (%) per million parameters (Canziani et al. 2016)
    pareto: bool  # no other shown model is as accurate for fewer MACs
    # Extensions: where the point comes from and the input side of both its MACs and top-1.
    source: str = ""
    pretrain: str | None = None
    resolution: int = 0


class WithoutAccuracy(BaseModel):
    id: str
    name: str
    family: str
    reason: str | None  # the citation saying why there is no ImageNet figure


class IlsvrcEntry(BaseModel):
    year: int | None
    entry: str
    kind: Literal["winner", "runner_up", "human"]
    top5_error: float  # percent
    layers: int | None
    citation: str


class AccuracyChart(BaseModel):
    points: list[AccuracyPoint]
    without_accuracy: list[WithoutAccuracy]
    ilsvrc: list[IlsvrcEntry]
    # Extensions: models with an accuracy whose MACs at that resolution are not
    # analysed yet (never guessed), and the filters applied.
    pending: list[WithoutAccuracy] = []
    filters: dict[str, list[str]] = {}
