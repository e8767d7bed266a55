"""The course formulas filled in per layer (app.zoo.formulas) agree with
what the analysis engine measured, on real models built on meta; and the
per-stage and along-depth breakdowns add up to the totals."""

from __future__ import annotations

import pytest

from app.zoo.layer_stats import profile, shares, stages, table_rows
from app.zoo.data import layers_data
from models.registry import get_entry, list_models

LESSON_MODELS = ["vgg16", "alexnet_paper", "resnet50", "googlenet", "mobilenet_v2"]


@pytest.fixture(scope="module")
def cache(app):
    return app.state.analysis_cache


def _layers(cache, model_id, resolution=None):
    return layers_data(cache, get_entry(model_id), resolution)


def _row(data, path):
    return next(layer for layer in data.layers if layer.path == path)


def _formula(layer, kind):
    return next(f for f in layer.formulas if f.kind == kind)


def _mismatches(data):
    """Formulas whose value differs from the measured output size, params or MACs."""
    bad = []
    for layer in data.layers:
        for f in layer.formulas:
            measured = {"output_size": layer.output_shape[2:] if layer.output_shape else None,
                        "params": layer.params, "macs": layer.macs}[f.kind]
            if f.value != measured:
                bad.append((data.id, layer.path, f.kind, f.expression, measured))
    return bad


@pytest.mark.parametrize("model_id", LESSON_MODELS)
def test_every_formula_equals_the_measured_value(cache, model_id):
    data = _layers(cache, model_id)
    kinds = {(layer.type, f.kind) for layer in data.layers for f in layer.formulas}
    assert ("Conv2d", "output_size") in kinds and ("Conv2d", "macs") in kinds and ("Linear", "params") in kinds
    assert _mismatches(data) == []


def test_formulas_hold_across_the_whole_catalog(cache):
    # timm's TF-'same' convs and pools, dilated convs, ceil_mode pools, Swin's channels-last linears...
    # The course's catalog (every id but timm-<arch>: the whole timm zoo would take the suite past its budget).
    course = [entry for entry in list_models() if entry.timm is None]
    assert [bad for entry in course for bad in _mismatches(_layers(cache, entry.id))] == []


def test_formulas_hold_at_another_resolution(cache):
    assert _mismatches(_layers(cache, "resnet50", 193)) == []


def test_alexnet_paper_conv1_as_the_lecture_writes_it(cache):
    conv1 = _row(_layers(cache, "alexnet_paper"), "features.0")
    size = _formula(conv1, "output_size")
    assert size.symbolic == "(W − F + 2P)/S + 1"
    assert size.expression == "(227 − 11 + 2·0)/4 + 1 = 55" and size.value == [55, 55]
    assert _formula(conv1, "params").expression == "(11·11·3 + 1)·96 = 34,944"
    assert _formula(conv1, "macs").expression == "55·55·11·11·3·96 = 105,415,200"


def test_grouped_conv_divides_by_groups(cache):
    conv2 = _row(_layers(cache, "alexnet_paper"), "features.4")  # CONV2: 256 5x5, pad 2, 2 groups
    assert _formula(conv2, "params").expression == "(5·5·96/2 + 1)·256 = 307,456"


def test_floor_shown_when_the_stride_does_not_divide(cache):
    conv1 = _row(_layers(cache, "alexnet"), "features.0")  # torchvision: 224 input, 11x11 stride 4 pad 2
    assert _formula(conv1, "output_size").expression == "⌊(224 − 11 + 2·2)/4⌋ + 1 = ⌊54.25⌋ + 1 = 55"


def test_ceil_mode_pool(cache):
    pool = _row(_layers(cache, "googlenet"), "maxpool1")  # 3x3 stride 2, ceil_mode=True
    size = _formula(pool, "output_size")
    assert size.symbolic.startswith("⌈") and size.note == "ceil_mode=True: rounds up"
    assert size.expression == "⌈(112 − 3 + 2·0)/2⌉ + 1 = 56"
    assert _formula(pool, "params").value == 0 and _formula(pool, "macs").value == 0


def test_vgg16_fc6_holds_most_parameters(cache):
    fc6 = _row(_layers(cache, "vgg16"), "classifier.0")
    assert _formula(fc6, "params").expression == "(25088 + 1)·4096 = 102,764,544"
    assert 7 * 7 * 512 * 4096 == 102_760_448 == fc6.params - 4096  # weights, as the lecture counts them
    assert _formula(fc6, "macs").expression == "25088·4096 = 102,760,448"


def test_conv_without_bias(cache):
    conv = _row(_layers(cache, "resnet50"), "conv1")
    assert _formula(conv, "params").expression == "7·7·3·64 = 9,408"
    assert "no bias" in _formula(conv, "params").symbolic


def test_linear_on_tokens_counts_every_token(cache):
    mlp = _row(_layers(cache, "vit_b_16"), "encoder.layers.encoder_layer_0.mlp.0")
    assert _formula(mlp, "macs").expression == "197·768·3072 = 464,781,312"


@pytest.mark.parametrize("model_id", [*LESSON_MODELS, "vit_b_16", "swin_t", "inception_v3"])
def test_stages_and_profile_add_up_to_the_totals(cache, model_id):
    data = _layers(cache, model_id)
    found = stages(data.layers, data.input_shape, data.totals)
    assert sum(s.params for s in found) == data.totals.params
    assert sum(s.macs for s in found) == data.totals.macs
    leaves = sum(s.activation_bytes for s in found)
    assert leaves + data.input_shape[1] * data.input_shape[2] * data.input_shape[3] * 4 == data.totals.activation_bytes
    points = profile(data.layers, data.totals)
    assert (points[-1].params, points[-1].macs) == (data.totals.params, data.totals.macs)
    assert all(a.macs <= b.macs and a.params <= b.params for a, b in zip(points, points[1:]))
    assert sum(s.macs for s in shares(data.layers)) <= data.totals.macs


def test_vgg16_stages_put_parameters_in_the_head_and_memory_up_front(cache):
    data = _layers(cache, "vgg16")
    by_name = {s.name: s for s in stages(data.layers, data.input_shape, data.totals)}
    assert list(by_name) == ["stride 1", "stride 2", "stride 4", "stride 8", "stride 16", "stride 32", "head"]
    assert by_name["head"].params == 123_642_856  # FC6 + FC7 + FC8
    assert by_name["stride 1"].activation_bytes == 2 * 64 * 224 * 224 * 4  # two 64-channel convs at 224x224
    assert profile(data.layers, data.totals)[-1].depth == 16  # VGG-16: 13 convs + 3 FC


def test_inception_v3_aux_head_is_its_own_stage(cache):
    data = _layers(cache, "inception_v3")
    by_name = {s.name: s for s in stages(data.layers, data.input_shape, data.totals)}
    aux = sum(layer.params for layer in data.layers if layer.path == "AuxLogits")
    assert by_name["not run"].params == aux > 0 and by_name["not run"].macs == 0
    assert "model" not in by_name


def test_swin_stages_follow_patch_merging(cache):
    data = _layers(cache, "swin_t")
    assert [s.label for s in stages(data.layers, data.input_shape, data.totals)][:4] == [
        "stride 4 · 56×56", "stride 8 · 28×28", "stride 16 · 14×14", "stride 32 · 7×7"]


def test_blocks_fold_into_one_row(cache):
    for model_id, block, child in [("resnet50", "layer1.0", "layer1.0.conv1"),
                                   ("googlenet", "inception3a", "inception3a.branch1"),
                                   ("densenet121", "features.denseblock1", "features.denseblock1.denselayer1"),
                                   ("vit_b_16", "encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_0.mlp")]:
        data = _layers(cache, model_id)
        rows = {r.layer.path: r for r in table_rows(data.layers, data.totals)}
        assert rows[block].visible and rows[block].has_children and not rows[block].open, (model_id, block)
        assert not rows[child].visible and rows[child].block == block, (model_id, child)
