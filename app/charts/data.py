"""The data behind /charts/accuracy: complexity against ImageNet accuracy
(Canziani et al. 2016) and the ILSVRC winners by year."""

from __future__ import annotations

from dataclasses import asdict

from app.charts.schemas import AccuracyChart, AccuracyPoint, IlsvrcEntry, WithoutAccuracy
from app.schemas import ModelCard
from app.analysis_cache import AnalysisCache
from app.zoo.catalog import in_families
from app.zoo.data import catalog_data
from models.history import ilsvrc_results
from models.registry import get_entry


def pareto_ids(cards: list) -> set[str]:
    """Models no other model beats on both counts: more top-1 for no more MACs."""
    front, best = set(), float("-inf")
    for c in sorted(cards, key=lambda c: (c.macs, -c.top1)):
        if c.top1 > best:
            front.add(c.id)
            best = c.top1
    return front


def _totals_at_top1_resolution(cache: AnalysisCache, card: ModelCard):
    """Totals at the side the top-1 was measured at (timm's tables name it; the
    others are measured at their own input size), only if already analysed."""
    side = card.top1_resolution
    if side is None or side == card.input_size[1] == card.input_size[2]:
        return cache.peek_totals(get_entry(card.id)), card.input_size[1]
    return cache.peek_totals(get_entry(card.id), side), side


def accuracy_chart_data(cache: AnalysisCache, family: list[str] | None = None, pretrain: list[str] | None = None,
                        source: list[str] | None = None) -> AccuracyChart:
    """Every model with an ImageNet top-1, its MACs at the same resolution;
    filtered by family, pre-training data and source; the Pareto front is
    over the points shown."""
    cards = catalog_data(cache).models
    shown = [c for c in cards if in_families(c.family, family or []) and (not pretrain or c.pretrain in pretrain)
             and (not source or c.source in source)]
    points, pending = [], []
    for c in shown:
        if c.top1 is None:
            continue
        totals, side = _totals_at_top1_resolution(cache, c)
        if totals is None:
            pending.append(WithoutAccuracy(id=c.id, name=c.name, family=c.family,
                                           reason=f"not analysed at {side}×{side} yet (its top-1 was measured there)"))
            continue
        points.append(AccuracyPoint(
            id=c.id, name=c.name, family=c.family, year=c.year, params=totals.params, macs=totals.macs,
            top1=c.top1, top5=c.top5, accuracy_source=c.accuracy_source,
            top1_per_mparams=c.top1 / (totals.params / 1e6), pareto=False, source=c.source, pretrain=c.pretrain,
            resolution=side))
    front = pareto_ids(points)
    for p in points:
        p.pareto = p.id in front
    return AccuracyChart(
        points=points, pending=pending,
        without_accuracy=[WithoutAccuracy(id=c.id, name=c.name, family=c.family, reason=c.citation)
                          for c in shown if c.top1 is None],
        ilsvrc=[IlsvrcEntry(**asdict(r)) for r in ilsvrc_results()],
        filters={"family": family or [], "pretrain": pretrain or [], "source": source or []},
    )
