"""The analysis engine on toy nets whose numbers are worked out by hand, and on
the classic nets against the arithmetic of CURRICULUM.md."""

import pytest
import torch
from torch import nn

from models.analysis import AnalysisError, analyse, analyse_entry
from models.build import build_on_meta
from models.registry import get_entry


def on_meta(module: nn.Module) -> nn.Module:
    return module.to("meta")


def rows_by_path(analysis):
    return {row.path: row for row in analysis.layers}


def test_conv_and_linear_by_hand():
    net = on_meta(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True),
                                nn.Flatten(), nn.Linear(8 * 10 * 10, 10)))
    a = analyse(net, (1, 3, 10, 10))
    rows = rows_by_path(a)
    assert rows["0"].macs == 10 * 10 * 3 * 3 * 3 * 8
    assert rows["0"].params == 3 * 3 * 3 * 8 + 8
    assert rows["0"].output_shape == [1, 8, 10, 10]
    assert rows["3"].macs == 800 * 10
    assert a.totals.macs == 10 * 10 * 3 * 3 * 3 * 8 + 800 * 10
    # In-place ReLU and the Flatten view add no activation memory.
    assert rows["1"].activation_elements == 0
    assert rows["2"].activation_elements == 0
    assert a.totals.activation_elements == 3 * 10 * 10 + 8 * 10 * 10 + 10
    assert a.totals.activation_bytes == 4 * a.totals.activation_elements
    assert a.totals.param_bytes == 4 * a.totals.params


class Residual(nn.Module):
    """A functional matmul and add, and a child module called twice."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4, bias=False)
        self.w = nn.Parameter(torch.empty(4, 6))

    def forward(self, x):
        y = self.proj(self.proj(x)) + x
        return y @ self.w


def test_functional_ops_are_counted_and_attributed_and_repeat_calls_appear_twice():
    a = analyse(on_meta(Residual()), (2, 4))
    assert [row.path for row in a.layers] == ["proj", "proj"]
    assert [row.macs for row in a.layers] == [2 * 4 * 4, 2 * 4 * 4]
    # The matmul runs in the root module: it is in the total, not in a child's row.
    assert a.totals.macs == 2 * (2 * 4 * 4) + 2 * 4 * 6
    assert a.totals.params == 16 + 24


class WithUnusedHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.aux = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x))


def test_a_branch_that_never_runs_is_listed_as_not_executed_in_place():
    a = analyse(on_meta(WithUnusedHead()), (1, 4))
    assert [(row.path, row.executed) for row in a.layers] == [
        ("body", True), ("aux", False), ("aux.0", False), ("aux.1", False), ("head", True)]
    assert a.totals.params == 20 + 40 + 10


def test_attention_out_proj_is_part_of_its_parent():
    mha = on_meta(nn.MultiheadAttention(8, 2, batch_first=True))

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    a = analyse(Wrap(), (1, 5, 8))
    assert [row.path for row in a.layers] == ["mha"]
    # in-projection 5x8x24, QK^T 2 heads x 5x5x4, AV 2 x 5x5x4, out-projection 5x8x8
    assert a.totals.macs == 5 * 8 * 24 + 2 * 5 * 5 * 4 * 2 + 5 * 8 * 8


def test_alexnet_paper_shapes_and_parameters():
    a = analyse_entry(get_entry("alexnet_paper"))
    rows = rows_by_path(a)
    assert rows["features.0"].output_shape == [1, 96, 55, 55]  # (227 - 11)/4 + 1 = 55
    assert rows["features.0"].params == (11 * 11 * 3 + 1) * 96
    assert rows["features.4"].params == (5 * 5 * 96 // 2 + 1) * 256  # 2 groups
    assert rows["features.14"].output_shape == [1, 256, 6, 6]
    assert a.totals.params == 60_965_224
    assert "LocalResponseNorm" in {row.type for row in a.layers}


def test_vgg16_parameters_live_in_fc6_and_memory_in_the_first_convs():
    a = analyse_entry(get_entry("vgg16"))
    rows = rows_by_path(a)
    fc6 = rows["classifier.0"]
    assert fc6.params - 4096 == 7 * 7 * 512 * 4096 == 102_760_448
    assert fc6.params == max(row.params for row in a.layers if row.is_leaf)
    convs = [row for row in a.layers if row.type == "Conv2d"]
    assert max(convs, key=lambda r: r.activation_elements).path in {"features.0", "features.2"}
    assert a.totals.params == 138_357_544
    assert a.totals.macs == 15_470_264_320


def test_lenet5():
    a = analyse_entry(get_entry("lenet5"))
    assert a.input_shape == [1, 1, 32, 32]
    assert a.totals.params == 61_706
    assert [row.output_shape for row in a.layers if row.type == "Conv2d"] == [[1, 6, 28, 28], [1, 16, 10, 10]]


def test_zfnet_shapes_follow_the_paper():
    a = analyse_entry(get_entry("zfnet"))
    shapes = [row.output_shape[2] for row in a.layers if row.type in ("Conv2d", "MaxPool2d")]
    assert shapes == [110, 55, 26, 13, 13, 13, 13, 6]
    wide = analyse_entry(get_entry("zfnet_wide"))
    assert [row.output_shape[1] for row in wide.layers if row.type == "Conv2d"][2:] == [512, 1024, 512]


def test_nin_has_no_fully_connected_layer():
    a = analyse_entry(get_entry("nin"))
    assert "Linear" not in {row.type for row in a.layers}
    assert a.layers[-1].output_shape == [1, 1000]


def test_googlenet_without_aux_heads_and_inception_v3_with_its_aux_head_not_run():
    googlenet = analyse_entry(get_entry("googlenet"))
    assert not any(row.path.startswith("aux") for row in googlenet.layers)
    v3 = analyse_entry(get_entry("inception_v3"))
    aux = [row for row in v3.layers if row.path.startswith("AuxLogits")]
    assert aux and not any(row.executed for row in aux)
    assert aux[0].params == sum(p.numel() for p in build_on_meta(get_entry("inception_v3")).AuxLogits.parameters())
    assert all(row.executed for row in v3.layers if not row.path.startswith("AuxLogits"))


@pytest.mark.parametrize("model_id, params", [
    ("inception_v4", 42_679_816), ("inception_resnet_v2", 55_843_464), ("xception", 22_855_952),
    ("nasnetalarge", 88_753_150), ("senet154", 115_088_984), ("mobilenet_v1", 4_231_976),
    ("efficientnet_lite0", 4_652_008), ("efficientnet_lite1", 5_416_680), ("efficientnet_lite2", 6_092_072),
])
def test_timm_models_match_timm(model_id, params):
    import timm

    entry = get_entry(model_id)
    assert entry.input_size == tuple(timm.models.get_pretrained_cfg(entry.timm_name).input_size)
    assert analyse_entry(entry).totals.params == params


def test_mobilenet_v1_matches_the_paper():
    a = analyse_entry(get_entry("mobilenet_v1"))
    assert round(a.totals.macs / 1e6) == 569  # Howard et al. 2017, Table 8: 569M mult-adds
    assert round(a.totals.params / 1e6, 1) == 4.2


def test_inputs_a_net_cannot_take_raise_analysis_error():
    with pytest.raises(AnalysisError):
        analyse_entry(get_entry("lenet5"), 16)
    with pytest.raises(AnalysisError):
        analyse_entry(get_entry("vgg16"), 16)
    with pytest.raises(AnalysisError):
        analyse_entry(get_entry("resnet18"), 0)


@pytest.mark.parametrize("model_id", ["mobilenet_v3_small", "googlenet", "swin_t"])
def test_meta_trace_agrees_with_a_real_cpu_forward(model_id):
    """The memoised meta kernels must not change a number: compare every output
    shape and the MAC total with a real forward pass under torch's own counter."""
    from torch.utils.flop_counter import FlopCounterMode

    from models.build import build_empty

    entry = get_entry(model_id)
    meta_analysis = analyse_entry(entry)
    model = build_empty(entry, "cpu")
    for p in model.parameters():
        p.data.normal_(0, 0.01)  # values don't matter, NaNs would only slow things down
    for b in model.buffers():
        b.data.fill_(1 if b.dtype.is_floating_point else 0)
    shapes = []
    handles = [m.register_forward_hook(lambda m, i, o: shapes.append(list(o.shape) if hasattr(o, "shape") else None))
               for name, m in model.named_modules() if name]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, *entry.input_size))
    for h in handles:
        h.remove()
    executed = [row for row in meta_analysis.layers if row.executed]
    # Hooks fire on exit: order the meta rows the same way (post-order) by comparing as multisets.
    assert sorted(map(str, shapes)) == sorted(str(row.output_shape) for row in executed)
    assert counter.get_total_flops() // 2 == meta_analysis.totals.macs
