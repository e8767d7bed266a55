"""Catalog cards, per-layer tables and comparisons: the data behind the zoo
pages and their /api twins."""

from __future__ import annotations

from dataclasses import asdict

from app.analysis_cache import AnalysisCache
from app.errors import InvalidParameter
from app.schemas import ModelCard
from app.zoo.schemas import CatalogResponse, CompareItem, CompareResponse, Layer, LayersResponse, ModelDetail, Totals
from app.zoo.formulas import layer_formulas
from app.zoo.layer_stats import profile, stages
from models.analysis import Analysis, AnalysisError, Totals as AnalysisTotals
from models.catalog import ModelEntry
from models.registry import list_models
from models.weights import weights_status

MAX_COMPARE = 6


def analysis_for(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None) -> Analysis:
    try:
        return cache.get(entry, resolution)
    except AnalysisError as exc:
        raise InvalidParameter(str(exc)) from None


def card(entry: ModelEntry, totals: AnalysisTotals | None) -> ModelCard:
    """The catalog card; ``totals`` at the model's own input size, None
    while it is not analysed yet (then params and MACs are null)."""
    status = weights_status(entry)
    return ModelCard(
        id=entry.id, name=entry.name, family=entry.family.name, year=entry.model_year, source=entry.source,
        input_size=list(entry.input_size), params=totals.params if totals else None,
        macs=totals.macs if totals else None, analysed=totals is not None,
        top1=entry.top1, top5=entry.top5, accuracy_source=entry.accuracy_source, weights=status.status,
        paper=entry.family.paper, introduced=entry.family.introduced, citation=entry.citation,
        weights_reason=status.reason,
    )


def catalog_data(cache: AnalysisCache, analyse_missing: bool = True) -> CatalogResponse:
    """Every model's card, from the analyses in memory or on disk. A model not
    analysed yet is analysed first when ``analyse_missing`` (the server runs no
    warm-up); otherwise its card says so (``analysed`` false) and the catalog
    answers at once instead of waiting for the warm-up."""
    return CatalogResponse(models=[
        card(entry, cache.get(entry).totals if analyse_missing else cache.card_totals(entry))
        for entry in list_models()])


def _totals(analysis: Analysis) -> Totals:
    return Totals(**asdict(analysis.totals))


def _layers(analysis: Analysis) -> list[Layer]:
    layers = [Layer(**asdict(row)) for row in analysis.layers]
    for layer in layers:
        layer.formulas = layer_formulas(layer)
    return layers


def model_data(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None,
               layers: list[Layer] | None = None) -> ModelDetail:
    """``layers``: the rows of ``layers_data`` for the same resolution, where
    the caller has them (the model page), so they are not built twice."""
    analysis = analysis_for(cache, entry, resolution)
    totals = _totals(analysis)
    layers = layers if layers is not None else _layers(analysis)
    return ModelDetail(
        **card(entry, cache.get(entry).totals).model_dump(), totals=totals, flops=2 * totals.macs,
        training_activation_bytes_estimate=2 * totals.activation_bytes,
        input_shape=analysis.input_shape, stages=stages(layers, analysis.input_shape, totals),
    )


def layers_data(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None) -> LayersResponse:
    analysis = analysis_for(cache, entry, resolution)
    return LayersResponse(
        id=entry.id, input_shape=analysis.input_shape, totals=_totals(analysis), layers=_layers(analysis),
    )


# 1 to MAX_COMPARE ids, comma-separated: declared in the OpenAPI schema too.
MODEL_LIST_PATTERN = rf"^\s*[a-z0-9_]+\s*(,\s*[a-z0-9_]+\s*){{0,{MAX_COMPARE - 1}}}$"


def parse_model_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def compare_item(cache: AnalysisCache, entry: ModelEntry) -> CompareItem:
    analysis = cache.get(entry)
    totals = _totals(analysis)
    layers = _layers(analysis)
    return CompareItem(**card(entry, analysis.totals).model_dump(), totals=totals, input_shape=analysis.input_shape,
                       stages=stages(layers, analysis.input_shape, totals), profile=profile(layers, totals))


def compare_data(cache: AnalysisCache, entries: list[ModelEntry]) -> CompareResponse:
    return CompareResponse(models=[compare_item(cache, entry) for entry in entries])


LAYER_CSV_COLUMNS = ("path", "type", "depth", "is_leaf", "executed", "output_shape", "params", "macs",
                     "activation_elements")


def layers_csv(data: LayersResponse) -> str:
    """The per-layer table as CSV; shapes written as 1x64x224x224."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LAYER_CSV_COLUMNS)
    for layer in data.layers:
        row = layer.model_dump()
        row["output_shape"] = "x".join(map(str, layer.output_shape or []))
        writer.writerow(row[column] for column in LAYER_CSV_COLUMNS)
    return out.getvalue()


def layers_table(data: LayersResponse) -> str:
    """A torchinfo-like text table, to paste into notes."""
    header = ("Layer (type)", "Output shape", "Params", "MACs", "Activations")
    rows = []
    for layer in data.layers:
        name = "  " * (layer.depth - 1) + f"{layer.path.rsplit('.', 1)[-1]} ({layer.type})"
        if not layer.executed:
            name += " [not run in eval]"
        shape = "x".join(map(str, layer.output_shape)) if layer.output_shape else "--"
        rows.append((name, shape, f"{layer.params:,}", f"{layer.macs:,}", f"{layer.activation_elements:,}"))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    t = data.totals
    footer = [
        f"Input shape: {'x'.join(map(str, data.input_shape))}",
        f"Total params: {t.params:,} ({t.param_bytes / 1e6:.2f} MB)",
        f"Trainable params: {t.trainable_params:,}",
        f"Multiply-adds (MACs): {t.macs:,} ({t.macs / 1e9:.3f} G; FLOPs = 2 x MACs)",
        f"Forward activations: {t.activation_elements:,} elements ({t.activation_bytes / 1e6:.2f} MB)",
    ]
    return "\n".join([rule, line(header), rule, *map(line, rows), rule, *footer, rule])
