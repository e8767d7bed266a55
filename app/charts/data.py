"""The data behind /charts/accuracy: complexity against ImageNet accuracy
(Canziani et al. 2016) and the ILSVRC winners by year."""

from __future__ import annotations

from dataclasses import asdict

from app.charts.schemas import AccuracyChart, AccuracyPoint, IlsvrcEntry, WithoutAccuracy
from app.schemas import ModelCard
from app.analysis_cache import AnalysisCache
from app.zoo.data import catalog_data
from models.history import ilsvrc_results


def pareto_ids(cards: list[ModelCard]) -> set[str]:
    """Models no other model beats on both counts: more top-1 for no more MACs."""
    front, best = set(), float("-inf")
    for c in sorted(cards, key=lambda c: (c.macs, -c.top1)):
        if c.top1 > best:
            front.add(c.id)
            best = c.top1
    return front


def accuracy_chart_data(cache: AnalysisCache, analyse_missing: bool = True) -> AccuracyChart:
    """Models not analysed yet (the warm-up is running) are left out until they are."""
    cards = [c for c in catalog_data(cache, analyse_missing).models if c.analysed]
    known = [c for c in cards if c.top1 is not None]
    front = pareto_ids(known)
    return AccuracyChart(
        points=[AccuracyPoint(id=c.id, name=c.name, family=c.family, year=c.year, params=c.params, macs=c.macs,
                              top1=c.top1, top5=c.top5, accuracy_source=c.accuracy_source,
                              top1_per_mparams=c.top1 / (c.params / 1e6), pareto=c.id in front) for c in known],
        without_accuracy=[WithoutAccuracy(id=c.id, name=c.name, family=c.family, reason=c.citation)
                          for c in cards if c.top1 is None],
        ilsvrc=[IlsvrcEntry(**asdict(r)) for r in ilsvrc_results()],
    )
