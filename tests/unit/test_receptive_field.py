"""Receptive field and jump on each layer row: worked values for VGG-16, the
paper's AlexNet and ResNet-50, a gradient-based check on a toy net with
branches, and every zoo model gets values without error. Zoo analyses come
from the session's analysis cache, shared with the other tests."""

from __future__ import annotations

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
    # FC6 sees the whole 7x7 map: 212 + 6 * 32.
    assert rf["classifier.0"] == (404, 224)


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
    for entry in list_models():
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
        # one attention layer sees the whole 14x14 patch grid: 16 + 13 * 16
        assert rf["encoder.layers.encoder_layer_0.self_attention"] == (224, 16)
    else:
        assert rf["features.0"] == (4, 4)
        assert [rf[f"features.{i}"][1] for i in (2, 4, 6)] == [8, 16, 32]  # patch merging strides
