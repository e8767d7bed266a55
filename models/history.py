"""ILSVRC history: the classification winners' top-5 error by year, their
depth, and the human reference, each with its citation (data/ilsvrc.csv)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class IlsvrcResult:
    year: int | None  # None for the human reference
    entry: str
    kind: Literal["winner", "runner_up", "human"]
    top5_error: float  # percent, on the ILSVRC test set
    layers: int | None  # weight layers, where the slides give them
    citation: str


@cache
def ilsvrc_results() -> tuple[IlsvrcResult, ...]:
    with open(Path(__file__).parent / "data" / "ilsvrc.csv", newline="") as f:
        return tuple(
            IlsvrcResult(year=int(row["year"]) if row["year"] else None, entry=row["entry"], kind=row["kind"],
                         top5_error=float(row["top5_error"]), layers=int(row["layers"]) if row["layers"] else None,
                         citation=row["citation"])
            for row in csv.DictReader(f)
        )
