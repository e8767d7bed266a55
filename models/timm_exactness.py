"""ConvZoo's counts against timm's benchmark table, one row at a time.

A row of ``data/timm_benchmark.csv`` gives params (millions, 2 decimals) and
GMACs (2 decimals, counted by fvcore) at ``infer_img_size``. ConvZoo
analyses the architecture at that size -- the re-parameterised inference form
where timm has one, as the table does -- and reconciles the GMACs op by op
(models/fvcore_convention.py): ConvZoo's MACs, plus what fvcore counts and
ConvZoo does not, minus what ConvZoo counts and fvcore misses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from models.analysis import analyse, input_shape_for
from models.build import build_on_meta
from models.fvcore_convention import count_per_op
from models.registry import UnknownModelError, get_entry
from models.timm_zoo import PREFIX, BenchmarkRow, is_reparameterisable

GMACS_TOLERANCE = 0.005 + 1e-9  # the table rounds to 2 decimals


@dataclass
class RowCheck:
    arch: str
    img_size: int
    timm_params_m: float
    timm_gmacs: float
    status: str = "ok"  # ok | failed
    reason: str | None = None
    reparameterised: bool = False
    params: int | None = None  # as analysed: the fused form where there is one
    params_trained: int | None = None  # as trained, where that differs
    convzoo_macs: int | None = None
    # per top-level op: fvcore's count minus ConvZoo's (non-zero entries only)
    adjustments: dict[str, int] = field(default_factory=dict)
    reconciled_macs: int | None = None
    params_equal: bool = False
    gmacs_equal: bool = False
    gmacs_equal_unreconciled: bool = False
    responsible_op: str | None = None  # where GMACs still differ: the op that explains it, if one does

    def to_dict(self) -> dict:
        return asdict(self)


def _close(macs: int, gmacs: float) -> bool:
    return abs(macs / 1e9 - gmacs) <= GMACS_TOLERANCE


def _responsible(check: RowCheck) -> str | None:
    """The op whose adjustment, undone, makes the row agree (timm's figure
    counted it as ConvZoo does); else no single op explains it, said so."""
    for op, delta in sorted(check.adjustments.items(), key=lambda kv: -abs(kv[1])):
        if _close(check.reconciled_macs - delta, check.timm_gmacs):
            return f"{op} (timm's figure counts it as ConvZoo does)"
    if not check.params_equal:
        return "a different network: timm's row has other params too"
    return f"no single op explains it (reconciled: {', '.join(check.adjustments) or 'none'})"


def check_row(row: BenchmarkRow) -> RowCheck:
    """Analyse one benchmark row; failures come back with their reason, never raised."""
    check = RowCheck(row.arch, row.img_size, row.param_count_m, row.gmacs)
    try:
        entry = get_entry(PREFIX + row.arch)
    except UnknownModelError:
        check.status, check.reason = "failed", "not an architecture of the installed timm"
        return check
    shape = input_shape_for(entry, row.img_size)
    resolution = row.img_size if entry.resolution_kwarg else None
    try:
        model = build_on_meta(entry, resolution)
        if is_reparameterisable(model):
            check.params_trained = sum(p.numel() for p in model.parameters())
            model = build_on_meta(entry, resolution, reparameterised=True)
            check.reparameterised = True
        analysis = analyse(model, shape)
        per_op = count_per_op(model, shape)
    except Exception as exc:  # every row is reported, whatever breaks
        check.status = "failed"
        check.reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        return check
    check.params = analysis.totals.params
    if check.params_trained == check.params:
        check.params_trained = None
    check.convzoo_macs = analysis.totals.macs
    if per_op.convzoo_total != analysis.totals.macs:
        check.status, check.reason = "failed", (
            f"per-op attribution ({per_op.convzoo_total}) differs from the analysis ({analysis.totals.macs})")
        return check
    check.adjustments = {op: c.fvcore_macs - c.convzoo_macs for op, c in per_op.ops.items()
                         if c.fvcore_macs != c.convzoo_macs}
    check.reconciled_macs = per_op.fvcore_total
    check.params_equal = math.isclose(round(check.params / 1e6, 2), row.param_count_m)
    check.gmacs_equal = _close(check.reconciled_macs, row.gmacs)
    check.gmacs_equal_unreconciled = _close(check.convzoo_macs, row.gmacs)
    if not check.gmacs_equal:
        check.responsible_op = _responsible(check)
    return check
