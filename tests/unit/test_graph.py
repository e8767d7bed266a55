"""The data-flow graph the analysis records, on structures whose graph is
known: an own toy net worked out by hand, GoogLeNet's inception (3a), a
ResNet-50 bottleneck with downsample, DenseNet-121's first dense block,
VGG-16's chain, MobileNet v3's squeeze-excitation and ViT's attention."""

from collections import defaultdict

import pytest
import torch
from torch import nn

from models.analysis import analyse, analyse_entry
from models.graph import fold
from models.registry import get_entry


@pytest.fixture(scope="module")
def zoo():
    """Analyses of the nets the tests read, traced once."""
    cache = {}

    def get(model_id):
        if model_id not in cache:
            cache[model_id] = analyse_entry(get_entry(model_id))
        return cache[model_id]

    return get


def view(analysis, depth=None, **kwargs):
    return fold(analysis.graph, analysis.layers, depth, **kwargs)


def sources(view_, target):
    return [s for s, t in view_.edges if t == target]


def targets(view_, source):
    return [t for s, t in view_.edges if s == source]


def by_id(view_):
    return {n["id"]: n for n in view_.nodes}


class GatedConcat(nn.Module):
    """Two branches from one input joined by a cat, gated by a functional
    sigmoid-and-multiply (a squeeze-excitation in miniature), then pooled."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 2, 1)
        self.gate = nn.Conv2d(6, 6, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], 1)
        return self.pool(y * torch.sigmoid(self.gate(y)))


def test_own_net_by_hand():
    a = analyse(GatedConcat().to("meta"), (1, 3, 8, 8))
    v = view(a)
    assert [n["id"] for n in v.nodes] == ["input", "a", "b", ":cat", "gate", ":mul", "pool"]
    assert v.edges == [("input", "a"), ("input", "b"), ("a", ":cat"), ("b", ":cat"), (":cat", "gate"),
                       (":cat", ":mul"), ("gate", ":mul"), (":mul", "pool")]
    nodes = by_id(v)
    assert nodes[":cat"]["type"] == "cat" and nodes[":cat"]["output_shape"] == [1, 6, 8, 8]
    assert nodes[":mul"]["type"] == "mul" and nodes[":mul"]["path"] == "" and nodes[":mul"]["parent"] is None
    assert nodes["a"]["macs"] == 8 * 8 * 3 * 3 * 3 * 4 and nodes["a"]["params"] == 3 * 3 * 3 * 4 + 4
    assert nodes["a"]["receptive_field"] == 3 and nodes[":mul"]["receptive_field"] == 3
    assert nodes["a"]["row"] == [row.path for row in a.layers].index("a")


def test_googlenet_inception_3a_four_branches_one_concatenation(zoo):
    v = view(zoo("googlenet"), depth=2)
    nodes = by_id(v)
    branches = [f"inception3a.branch{i}" for i in range(1, 5)]
    for branch in branches:
        assert sources(v, branch) == ["maxpool2"]
    assert targets(v, "maxpool2") == branches
    assert sources(v, "inception3a:cat") == branches
    assert [nodes[b]["output_shape"][1] for b in branches] == [64, 128, 32, 32]
    cat = nodes["inception3a:cat"]
    assert (cat["type"], cat["path"], cat["parent"], cat["output_shape"]) == (
        "cat", "inception3a", "inception3a", [1, 64 + 128 + 32 + 32, 28, 28])
    assert [n["id"] for n in v.nodes if n["type"] == "cat" and n["parent"] == "inception3a"] == ["inception3a:cat"]
    assert targets(v, "inception3a:cat") == [f"inception3b.branch{i}" for i in range(1, 5)]
    # The inception module is a frame around its five nodes.
    assert {b["id"] for b in v.blocks} >= {"inception3a"}


def test_resnet50_downsample_bottleneck_two_paths_into_one_add(zoo):
    v = view(zoo("resnet50"), depth=3)
    assert targets(v, "maxpool") == ["layer1.0.conv1", "layer1.0.downsample"]
    add = by_id(v)["layer1.0:add"]
    assert (add["type"], add["path"], add["output_shape"]) == ("add", "layer1.0", [1, 256, 56, 56])
    assert sources(v, "layer1.0:add") == ["layer1.0.bn3", "layer1.0.downsample"]
    # The main path is a chain from conv1 to bn3 (one ReLU module called three times).
    chain = ["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.bn2",
             "layer1.0.relu#2", "layer1.0.conv3", "layer1.0.bn3"]
    for source, target in zip(chain, chain[1:]):
        assert sources(v, target) == [source]
    assert targets(v, "layer1.0:add") == ["layer1.0.relu#3"]
    # Without downsample the skip connection comes straight from the block's input.
    assert sources(v, "layer1.1:add") == ["layer1.1.bn3", "layer1.0.relu#3"]


def test_folded_block_carries_the_summed_costs_of_its_contents(zoo):
    a = zoo("resnet50")
    full, folded = view(a), view(a, depth=2)
    inside = [n for n in full.nodes if n["id"].startswith("layer1.0.") or n["id"].startswith("layer1.0:")]
    block = by_id(folded)["layer1.0"]
    assert block["folded"] and block["contains"] == len(inside) == 12
    assert block["macs"] == sum(n["macs"] for n in inside) == 231_211_008
    assert block["params"] == sum(n["params"] for n in inside if n["kind"] == "layer")
    assert sources(folded, "layer1.0") == ["maxpool"] and targets(folded, "layer1.0") == ["layer1.1"]
    # Folded to the top level, the nodes' MACs add up to the network's.
    assert sum(n["macs"] for n in view(a, depth=1).nodes) == a.totals.macs


def test_densenet121_first_dense_block_every_layer_feeds_every_later_one(zoo):
    v = view(zoo("densenet121"), depth=3)
    layers = [f"features.denseblock1.denselayer{i}" for i in range(1, 7)]
    for i, layer in enumerate(layers):
        assert sources(v, layer) == ["features.pool0", *layers[:i]]
    cat = by_id(v)["features.denseblock1:cat"]
    assert sources(v, cat["id"]) == ["features.pool0", *layers]
    assert cat["output_shape"] == [1, 64 + 6 * 32, 56, 56]
    assert targets(v, cat["id"]) == ["features.transition1.norm"]
    # Opened, a dense layer concatenates everything before it, then convolves.
    opened = view(zoo("densenet121"), depth=3, opened={"features.denseblock1.denselayer3"})
    assert sources(opened, "features.denseblock1.denselayer3:cat") == ["features.pool0", *layers[:2]]
    assert sources(opened, "features.denseblock1.denselayer3.norm1") == ["features.denseblock1.denselayer3:cat"]


def test_vgg16_is_a_chain(zoo):
    v = view(zoo("vgg16"))
    ids = [n["id"] for n in v.nodes]
    assert len(ids) == 1 + 31 + 1 + 7  # input, features, avgpool, classifier
    assert v.edges == list(zip(ids, ids[1:]))
    assert not [n for n in v.nodes if n["kind"] == "op"]


def test_mobilenet_v3_squeeze_excitation_multiplies(zoo):
    v = view(zoo("mobilenet_v3_large"))
    se = "features.4.block.2"
    mul = by_id(v)[f"{se}:mul"]
    assert (mul["type"], mul["path"], mul["output_shape"]) == ("mul", se, [1, 72, 28, 28])
    # The gate (global pool -> fc -> ReLU -> fc -> hard sigmoid) scales the block's input.
    assert sources(v, mul["id"]) == [f"{se}.scale_activation", "features.4.block.1.2"]
    assert sources(v, f"{se}.avgpool") == ["features.4.block.1.2"]
    muls = [n for n in v.nodes if n["type"] == "mul"]
    assert len(muls) == 8 and all(n["path"].endswith(".block.2") for n in muls)


def test_vit_attention_matmuls_are_nodes(zoo):
    v = view(zoo("vit_b_16"))
    attention = "encoder.layers.encoder_layer_0.self_attention"
    ops = [n for n in v.nodes if n["parent"] == attention]
    assert [n["type"] for n in ops] == ["linear", "matmul", "matmul", "linear"]
    scores = ops[1]
    assert scores["output_shape"][-2:] == [197, 197]
    assert scores["macs"] == 12 * 197 * 197 * 64  # heads x tokens x tokens x head dim
    blocks = defaultdict(list)
    for n in v.nodes:
        if n["type"] == "add":
            blocks[n["parent"]].append(n)
    assert len(blocks) == 12 and all(len(adds) == 2 for adds in blocks.values())


def test_graph_survives_the_cache_round_trip(zoo):
    import json

    from models.analysis import Analysis

    a = zoo("googlenet")
    again = Analysis.from_dict(json.loads(json.dumps(a.to_dict())))
    assert again.graph == a.graph and len(a.graph) == 233
