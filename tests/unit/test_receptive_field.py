"""Receptive field and jump on each layer row: worked values for VGG-16, the
paper's AlexNet and ResNet-50, a gradient-based check on a toy net with
branches, and every zoo model gets values without error. Zoo analyses come
from the session's analysis cache, shared with the other tests."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from models.analysis import analyse
from models.registry import get_entry, list_models


@pytest.fixture(scope="module")
def by_path(app):
    def rows(model_id: str) -> dict[str, tuple[int | None, int | None]]:
        analysis = app.state.analysis_cache.get(get_entry(model_id))
        return {row.path: (row.receptive_field, row.jump) for row in analysis.layers}
    return rows


def test_vgg16_receptive_fields(by_path):
    rf = by_path("vgg16")
    # conv1_1, conv1_2, pool1, conv2_1, conv2_2, pool2, conv3_3, pool3, conv4_3, pool4, conv5_3, pool5
    assert rf["features.0"] == (3, 1)
    assert rf["features.2"] == (5, 1)
    assert rf["features.3"] == (5, 1)  # ReLU adds nothing
    assert rf["features.4"] == (6, 2)
    assert rf["features.5"] == (10, 2)
    assert rf["features.7"] == (14, 2)
    assert rf["features.9"] == (16, 4)
    assert rf["features.14"] == (40, 4)
    assert rf["features.16"] == (44, 8)
    assert rf["features.21"] == (92, 8)
    assert rf["features.23"] == (100, 16)
    assert rf["features.28"] == (196, 16)
    assert rf["features.30"] == (212, 32)
    assert rf["features"] == (212, 32)
    assert rf["avgpool"] == (212, 32)  # 7x7 -> 7x7: the identity
    # FC6 mixes the whole 7x7 map: from there on each unit sees the whole 224-pixel input, no more.
    assert rf["classifier.0"] == (224, 224)
    assert rf["classifier.6"] == (224, 224)


def test_alexnet_paper_receptive_fields(by_path):
    rf = by_path("alexnet_paper")
    assert rf["features.0"] == (11, 4)     # CONV1 11x11 stride 4
    assert rf["features.2"] == (11, 4)     # LRN mixes channels, not positions
    assert rf["features.3"] == (19, 8)     # MAX POOL 3x3 stride 2
    assert rf["features.4"] == (51, 8)     # CONV2 5x5
    assert rf["features.7"] == (67, 16)
    assert rf["features.8"] == (99, 16)
    assert rf["features.10"] == (131, 16)
    assert rf["features.12"] == (163, 16)
    assert rf["features.14"] == (195, 32)


def test_branches_take_the_largest(by_path):
    rf = by_path("resnet50")
    assert rf["layer1.0.conv2"] == (19, 4)
    assert rf["layer1.0.downsample"] == (11, 4)  # the 1x1 shortcut
    assert rf["layer1.0"] == (19, 4)             # the add: the larger path
    assert rf["layer4"] == (427, 32)
    rf = by_path("googlenet")
    inception_3a = [rf[f"inception3a.branch{i}"][0] for i in range(1, 5)]
    assert rf["inception3a"][0] == max(inception_3a)
    rf = by_path("inception_v3")  # its pools are functional (F.max_pool2d): seen at the aten level
    assert rf["Mixed_5b.branch_pool"] == (rf["maxpool2"][0] + 2 * 8, 8)


class _Toy(nn.Module):
    """Stride, dilation, padding, an average pool, a two-branch concat and a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.narrow = nn.Conv2d(2, 2, 3, padding=1)
        self.wide = nn.Conv2d(2, 2, 5, padding=4, dilation=2)
        self.mix = nn.Conv2d(4, 4, 1)
        self.res = nn.Conv2d(4, 4, (1, 3), padding=(0, 1))

    def forward(self, x):
        x = self.pool(torch.relu(self.stem(x)))
        x = self.mix(torch.cat([self.narrow(x), self.wide(x)], 1))
        return x + self.res(x)


def _gradient_extent(model: nn.Module, size: int) -> int:
    """How many input pixels the centre output pixel depends on, along the
    larger axis, by back-propagation (all weights positive: nothing cancels)."""
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.1)
    x = torch.ones(1, 1, size, size, requires_grad=True)
    y = model(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    return max(int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)


def test_toy_net_matches_back_propagation():
    model = _Toy()
    meta = analyse(_Toy().to("meta"), (1, 1, 64, 64))
    top = [row for row in meta.layers if row.depth == 1][-1]
    final = max(row.receptive_field for row in meta.layers)
    # stem 3 (j 2) -> pool 3+2*2=7 (j 4) -> wide 5x5 dilation 2: 7+4*2*4=39 -> res 1x3: 39+2*4=47
    assert final == 47
    assert _gradient_extent(model, 64) == 47
    assert top.path == "res" and top.receptive_field == 47


def test_every_zoo_model_gets_receptive_fields(app):
    for entry in (e for e in list_models() if e.timm is None):  # the course's catalog, not the whole timm zoo
        analysis = app.state.analysis_cache.get(entry)
        rows = [row for row in analysis.layers if row.executed and row.output_shape and len(row.output_shape) == 4]
        assert rows, entry.id
        for row in rows:
            if "cpb_mlp" in row.path:  # Swin v2's position-bias MLP reads a constant table, not the image
                continue
            assert row.receptive_field is not None and row.receptive_field >= 1, (entry.id, row.path)
            assert row.jump is not None and row.jump >= 1, (entry.id, row.path)
        final = analysis.layers[-1]
        assert final.receptive_field is not None, entry.id


@pytest.mark.parametrize("model_id", ["swin_t", "vit_b_16"])
def test_transformers_stay_finite(by_path, model_id):
    rf = by_path(model_id)
    if model_id == "vit_b_16":
        assert rf["conv_proj"] == (16, 16)
        # one attention layer sees the whole 14x14 patch grid (16 + 13 * 16 = the input)...
        assert rf["encoder.layers.encoder_layer_0.self_attention"] == (224, 16)
        # ... and the eleven after it can't see more (it used to read 2,512 here, 2,720 in places)
        assert rf["encoder"] == rf["encoder.layers.encoder_layer_11"] == (224, 16)
        assert max(field for field, _ in rf.values() if field is not None) == 224
    else:
        assert rf["features.0"] == (4, 4)
        assert [rf[f"features.{i}"][1] for i in (2, 4, 6)] == [8, 16, 32]  # patch merging strides


@pytest.fixture(scope="module")
def rows_of(app):
    return lambda model_id: app.state.analysis_cache.get(get_entry(model_id)).layers


def test_global_mixing_marks_rows_and_stops_growth(rows_of):
    """Issue 17: once every position is mixed the field is the whole input, marked global."""
    rows = {row.path: row for row in rows_of("resnet50")}
    assert (rows["layer4"].receptive_field, rows["layer4"].receptive_field_global) == (427, False)
    assert (rows["avgpool"].receptive_field, rows["avgpool"].receptive_field_global) == (224, True)
    assert rows["fc"].receptive_field_global
    vit = rows_of("vit_b_16")
    first = next(i for i, row in enumerate(vit) if row.receptive_field_global and row.is_leaf is False
                 and row.type == "MultiheadAttention")
    assert vit[first].path == "encoder.layers.encoder_layer_0.self_attention"
    assert not any(row.receptive_field_global for row in vit[:first] if row.path.startswith("encoder.layers.encoder_layer_0."))
    assert all(row.receptive_field_global and row.receptive_field == 224 for row in vit[first:])
    assert not any(row.receptive_field_global for row in rows_of("vgg16") if row.path.startswith("features"))
    swin = {row.path: row for row in rows_of("swin_t")}  # a 7x7 window over the last 7x7 map mixes it all
    assert not swin["features.5"].receptive_field_global and swin["features.7.0"].receptive_field_global


def test_dropout_never_widens_the_field(rows_of):
    for model_id in ("vgg16", "vit_b_16", "inception_v3", "squeezenet1_0"):
        rows = [row for row in rows_of(model_id) if row.executed and row.receptive_field is not None]
        for before, row in zip(rows, rows[1:]):
            if row.type == "Dropout" and row.input_shape == before.output_shape:
                assert row.receptive_field <= before.receptive_field or not row.is_leaf, (model_id, row.path)


def test_global_field_matches_back_propagation():
    """A toy with a global pool then a conv: every input pixel moves the output, and the field
    reads the input's size, not the 2,000-odd pixels that stacking the formula would give."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Conv2d(2, 2, 1),
                          nn.Flatten(), nn.Linear(2, 3))
    meta = analyse(copy.deepcopy(model).to("meta"), (1, 1, 40, 40))
    assert [(r.receptive_field, r.receptive_field_global) for r in meta.layers] == [
        (3, False), (40, True), (40, True), (40, True), (40, True)]
    x = torch.ones(1, 1, 40, 40, requires_grad=True)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.1)
    model(x)[0, 0].backward()
    assert int((x.grad != 0).sum()) == 40 * 40
