"""Every architecture of ``timm.list_models()`` in the zoo as ``timm-<arch>``.

Registration builds nothing: an entry is timm's name, its facts and a builder
called only when the model is analysed. Facts come from ``data/timm_zoo.csv``,
made by ``tools/timm_facts.py`` from timm's own registry (model module,
pretrained tags, default input size, arXiv ids) and timm's published results
tables (best ImageNet-1k top-1/top-5, the resolution it was evaluated at,
pre-training data). Cite the tables as "timm results tables,
pytorch-image-models commit aa4b585".

The seven course models that come from timm keep their own ids; their
``timm-<arch>`` form is an alias of them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

PREFIX = "timm-"
DATA = Path(__file__).parent / "data"
FACTS_CSV = DATA / "timm_zoo.csv"
BENCHMARK_CSV = DATA / "timm_benchmark.csv"
TABLES_CITATION = "timm results tables, pytorch-image-models commit aa4b585"

# Columns of data/timm_zoo.csv, in order.
FACT_COLUMNS = ("arch", "module", "input_size", "fixed_input_size", "tags", "paper_ids", "year",
                "best_tag", "top1", "top5", "top1_resolution", "pretrain")


@dataclass(frozen=True)
class TimmFacts:
    """What timm and its tables say about one architecture (one row of data/timm_zoo.csv)."""

    arch: str
    module: str  # timm's model module: the family
    input_size: tuple[int, int, int]  # the default pretrained config's (C, H, W)
    fixed_input_size: bool  # True where the net is sized for its input (position embeddings ...)
    tags: tuple[str, ...]  # pretrained tags, e.g. ("a1_in1k", "tv_in1k")
    paper_ids: str | None  # e.g. "arXiv:2201.03545"
    year: int | None  # from the first arXiv id
    best_tag: str | None  # the tag with the best ImageNet-1k top-1 in the results table
    top1: float | None
    top5: float | None
    top1_resolution: int | None  # the side the best tag was evaluated at
    pretrain: str | None  # what the best tag was pre-trained on: in1k, in21k, laion2b ...


def arxiv_year(paper_ids: str | None) -> int | None:
    """The year of the first new-style arXiv id (YYMM.NNNNN): 'arXiv:2201.03545' -> 2022."""
    match = re.search(r"(\d{2})(\d{2})\.\d{4,5}", paper_ids or "")
    return 2000 + int(match[1]) if match else None


def live_facts(arch: str) -> TimmFacts:
    """The facts timm's registry holds about ``arch`` (no results-table columns).

    Used by tools/timm_facts.py, and at registration for an architecture the
    data file does not know (a newer timm)."""
    import timm
    from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    cfgs = get_arch_pretrained_cfgs(arch)
    paper_ids = next((c.paper_ids for c in [cfg, *cfgs.values()] if c is not None and c.paper_ids), None)
    module = next(m for m in timm.list_modules() if arch in timm.list_models(module=m))
    return TimmFacts(
        arch=arch, module=module, input_size=tuple(cfg.input_size), fixed_input_size=bool(cfg.fixed_input_size),
        tags=tuple(name.partition(".")[2] for name in cfgs if name.partition(".")[2]),
        paper_ids=paper_ids, year=arxiv_year(paper_ids), best_tag=None, top1=None, top5=None,
        top1_resolution=None, pretrain=None,
    )


def facts_to_row(facts: TimmFacts) -> dict[str, str]:
    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, tuple):
            return " ".join(map(str, value))
        return str(value)
    return {column: text(getattr(facts, column)) for column in FACT_COLUMNS}


def _row_to_facts(row: dict[str, str]) -> TimmFacts:
    def opt(cast, value: str):
        return cast(value) if value else None
    return TimmFacts(
        arch=row["arch"], module=row["module"], input_size=tuple(int(v) for v in row["input_size"].split()),
        fixed_input_size=row["fixed_input_size"] == "1", tags=tuple(row["tags"].split()),
        paper_ids=row["paper_ids"] or None, year=opt(int, row["year"]), best_tag=row["best_tag"] or None,
        top1=opt(float, row["top1"]), top5=opt(float, row["top5"]), top1_resolution=opt(int, row["top1_resolution"]),
        pretrain=row["pretrain"] or None,
    )


def load_facts() -> dict[str, TimmFacts]:
    with open(FACTS_CSV, newline="") as f:
        return {row["arch"]: _row_to_facts(row) for row in csv.DictReader(f)}


@dataclass(frozen=True)
class BenchmarkRow:
    """One row of timm's inference benchmark table (params in millions and
    GMACs, both rounded to 2 decimals, counted with fvcore at ``img_size``)."""

    arch: str
    img_size: int
    param_count_m: float
    gmacs: float


def load_benchmark() -> list[BenchmarkRow]:
    with open(BENCHMARK_CSV, newline="") as f:
        return [BenchmarkRow(r["model"], int(r["infer_img_size"]), float(r["param_count"]), float(r["infer_gmacs"]))
                for r in csv.DictReader(f)]


def timm_builder(arch: str, fixed_input_size: bool) -> Callable[..., nn.Module]:
    """Builds ``arch`` without weights; a net sized for its input (position
    embeddings, windows) is built for the requested side through timm's ``img_size``."""
    def build(**kwargs: Any) -> nn.Module:
        import timm
        return timm.create_model(arch, pretrained=False, **kwargs)
    build.resolution_kwarg = "img_size" if fixed_input_size else None  # type: ignore[attr-defined]
    return build


def reparameterise(model: nn.Module) -> nn.Module:
    """The inference form of a re-parameterisable net (RepVGG, MobileOne,
    FastViT ...), fused by timm's own ``reparameterize_model``; other nets unchanged."""
    from timm.utils.model import reparameterize_model
    return reparameterize_model(model, inplace=True)


def is_reparameterisable(model: nn.Module) -> bool:
    """True where some module has timm's ``fuse``, ``reparameterize`` or ``switch_to_deploy`` hook."""
    hooks = ("reparameterize", "fuse", "switch_to_deploy")
    return any(hasattr(m, hook) for m in model.modules() if m is not model for hook in hooks)
