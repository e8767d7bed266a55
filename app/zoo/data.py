"""Catalog cards, per-layer tables and comparisons: the data behind the zoo
pages and their /api twins."""

from __future__ import annotations

import threading
from dataclasses import asdict

from app.analysis_cache import AnalysisCache
from app.errors import InvalidParameter
from app.schemas import ModelCard, TrainedHere
from app.zoo.schemas import (CatalogResponse, CompareItem, CompareResponse, InputRule, Layer, LayersResponse,
                             ModelDetail, Totals, TrainingMemory)
from app.zoo.formulas import layer_formulas
from app.zoo.layer_stats import profile, stages
from models.analysis import MAX_RESOLUTION, Analysis, AnalysisError, Totals as AnalysisTotals
from models.resolution import resolution_rule
from models.catalog import ModelEntry
from models.registry import list_models
from models.digits import DATASET as DIGITS_DATASET
from models.weights import TRAINED_HERE, lenet5_training, weights_status

MAX_COMPARE = 6


def analysis_for(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None) -> Analysis:
    try:
        return cache.get(entry, resolution)
    except AnalysisError as exc:
        if resolution is not None and 1 <= resolution <= MAX_RESOLUTION:
            raise InvalidParameter(resolution_refusal(entry, resolution, exc.where)) from None
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
        weights_reason=status.reason, trained_here=_trained_here(entry),
    )


def _trained_here(entry: ModelEntry) -> TrainedHere | None:
    trained = lenet5_training() if entry.id == TRAINED_HERE else None
    if trained is None:
        return None
    return TrainedHere(dataset=DIGITS_DATASET, train_images=trained.train_images,
                       held_out_images=trained.held_out_images,
                       held_out_accuracy=round(trained.held_out_accuracy, 2))


def catalog_data(cache: AnalysisCache, analyse_missing: bool = True) -> CatalogResponse:
    """Every model's card, from the analyses in memory or on disk. A model not
    analysed yet is analysed first when ``analyse_missing`` (the server runs no
    warm-up); otherwise its card says so (``analysed`` false) and the catalog
    answers at once instead of waiting for the warm-up."""
    entries = list_models()
    if analyse_missing:
        return CatalogResponse(models=[card(entry, analysis.totals)
                                       for entry, analysis in zip(entries, cache.get_all(entries))])
    return CatalogResponse(models=[card(entry, cache.card_totals(entry)) for entry in entries])


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
    activations = 2 * totals.activation_bytes
    return ModelDetail(
        **card(entry, cache.get(entry).totals).model_dump(), totals=totals, flops=2 * totals.macs,
        training_activation_bytes_estimate=activations,
        input_shape=analysis.input_shape, stages=stages(layers, analysis.input_shape, totals),
        training_memory=training_memory(totals.param_bytes, activations),
        input_rule=input_rule(cache, entry),
    )


def input_rule(cache: AnalysisCache, entry: ModelEntry) -> InputRule:
    """The resolutions ``entry`` takes, kept beside its analyses: finding them costs a dozen traces
    (up to ~2 s for the largest nets), once per model and library versions, not once per process."""
    path = cache.directory / f"{entry.id}-input-rule-{cache.versions}.json"
    try:
        return InputRule.model_validate_json(path.read_text())
    except (OSError, ValueError):
        pass
    rule = resolution_rule(entry)
    found = InputRule(smallest=rule.smallest, only=rule.only, multiple_of=rule.multiple_of, reason=rule.reason)
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
    tmp.write_text(found.model_dump_json())
    tmp.replace(path)  # atomic: a reader never sees half a file
    return found


# Per-parameter buffers each optimizer keeps (torch.optim docs): SGD none, momentum one, Adam/AdamW two moments.
OPTIMIZER_STATE = (("SGD", 0), ("SGD with momentum", 1), ("Adam / AdamW", 2))


def training_memory(param_bytes: int, activation_bytes: int) -> list[TrainingMemory]:
    """Weights + gradients + optimizer state + activations kept for backward, per optimizer."""
    rows = []
    for name, buffers in OPTIMIZER_STATE:
        state = buffers * param_bytes
        rows.append(TrainingMemory(optimizer=name, state_per_weight=buffers, weights=param_bytes,
                                   gradients=param_bytes, optimizer_state=state, activations=activation_bytes,
                                   total=2 * param_bytes + state + activation_bytes))
    return rows


def resolution_refusal(entry: ModelEntry, resolution: int, where: str | None = None) -> str:
    """Why ``entry`` refuses ``resolution`` and what it takes instead, in the course's words; ``where``:
    the layer where the trace stopped, the shape it got and what it needs (AnalysisError.where)."""
    rule = resolution_rule(entry)  # memoised in-process; refusals are rare
    prefix = f"{entry.name} cannot take input {resolution}×{resolution}:"
    if rule.accepts(resolution) and where:  # a size the measured rule did not foresee failing (MaxViT at 256)
        return f"{prefix} {where}"
    s = rule.smallest
    if rule.only:
        instead = f"Use {s}."
    elif rule.multiple_of:
        instead = f"Try {max(s, -(-resolution // rule.multiple_of) * rule.multiple_of)}."
    else:
        instead = f"The smallest it takes is {s}×{s}."
    return f"{prefix} {rule.reason} {instead}" + (f" Where it fails: {where}" if where else "")


def layers_data(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None) -> LayersResponse:
    analysis = analysis_for(cache, entry, resolution)
    return LayersResponse(
        id=entry.id, input_shape=analysis.input_shape, totals=_totals(analysis), layers=_layers(analysis),
    )


# 1 to MAX_COMPARE ids, comma-separated: declared in the OpenAPI schema too.
MODEL_LIST_PATTERN = rf"^\s*[a-z0-9_.-]+\s*(,\s*[a-z0-9_.-]+\s*){{0,{MAX_COMPARE - 1}}}$"


def parse_model_list(text: str) -> list[str]:
    """The ids in order, a repeated id merged into its first place (vgg16,vgg16 compares one model)."""
    return list(dict.fromkeys(part.strip() for part in text.split(",")))


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
