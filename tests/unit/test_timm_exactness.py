"""ConvZoo against timm's benchmark table on a fixed sample of 40 rows: params
equal (the fused form for re-parameterisable nets) and GMACs equal once
reconciled op by op with fvcore's convention (bench/timm_exactness.py runs
every row)."""

from __future__ import annotations

import random

import pytest

from models.timm_exactness import check_row
from models.timm_zoo import load_benchmark

SAMPLE = random.Random(18).sample(load_benchmark(), 40)


@pytest.mark.parametrize("row", SAMPLE, ids=lambda r: f"{r.arch}@{r.img_size}")
def test_row_agrees_with_timm(row):
    check = check_row(row)
    assert check.status == "ok", check.reason
    assert check.params_equal, (check.params, row.param_count_m)
    assert check.gmacs_equal, (check.convzoo_macs, check.adjustments, check.reconciled_macs, row.gmacs)


def test_reparameterised_row_counts_the_fused_form():
    row = next(r for r in load_benchmark() if r.arch == "repvgg_a0")
    check = check_row(row)
    assert check.reparameterised and check.params_trained > check.params  # as trained: 3x3, 1x1 and identity branches
    assert round(check.params / 1e6, 2) == 8.31 and check.params_equal and check.gmacs_equal


def test_reconciliation_names_each_op():
    row = next(r for r in load_benchmark() if r.arch == "resnet50" and r.img_size == 224)
    check = check_row(row)
    # fvcore counts eval batch norm (2 per element, affine) and the global average pool; ConvZoo does not
    assert set(check.adjustments) == {"batch_norm", "adaptive_avg_pool2d"}
    assert check.adjustments["adaptive_avg_pool2d"] == 2048 * 7 * 7
    assert check.reconciled_macs == check.convzoo_macs + sum(check.adjustments.values())
