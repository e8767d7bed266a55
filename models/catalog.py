"""The zoo's entries: who each model is, how to build it as its weights define
it, and its published accuracy with the source. Facts live here once.

torchvision's models take their facts from torchvision's own weights enums
(``meta``: accuracy, parameter count, GMACs, the transforms' crop size); the
classics and timm models take accuracy from ``data/accuracy.csv``, each figure
with its citation.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights

import models.classic as classic
import models.timm_zoo as timm_zoo
from models.registry import register_alias, register_model
from models.timm_zoo import TimmFacts

Source = Literal["torchvision", "timm", "classic", "onnx", "sequential"]


@dataclass(frozen=True)
class Family:
    name: str
    year: int | None  # None for a timm module none of whose configs names a paper
    paper: str | None
    introduced: str | None


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str
    family: Family
    source: Source
    input_size: tuple[int, int, int]
    builder: Callable[..., nn.Module] = field(repr=False, compare=False)
    top1: float | None = None
    top5: float | None = None
    accuracy_source: str | None = None
    citation: str | None = None
    # The builder keyword that sets the input resolution (ViT's position
    # embedding is sized for it); None where any resolution builds the same net.
    resolution_kwarg: str | None = None
    year: int | None = None  # when it differs from the family's
    tv_weights: Any = field(default=None, repr=False, compare=False)  # torchvision WeightsEnum member
    timm_name: str | None = None
    # timm-<arch> entries: timm's facts and tables (models/timm_zoo.py)
    timm: TimmFacts | None = field(default=None, repr=False, compare=False)

    @property
    def model_year(self) -> int | None:
        return self.year or self.family.year

    def build(self, resolution: int | None = None) -> nn.Module:
        """The architecture, without weights, on the current default device."""
        kwargs = {}
        if self.resolution_kwarg and resolution is not None:
            kwargs[self.resolution_kwarg] = resolution
        return self.builder(**kwargs)


F = Family
FAMILIES = {
    "lenet": F("LeNet", 1998, "Gradient-Based Learning Applied to Document Recognition",
               "Convolutions, subsampling and fully connected layers trained end to end by backpropagation."),
    "alexnet": F("AlexNet", 2012, "ImageNet Classification with Deep Convolutional Neural Networks",
                 "ReLU, dropout, overlapping max-pooling and training on GPUs: the net that won ILSVRC 2012 by a wide margin."),
    "zfnet": F("ZFNet", 2013, "Visualizing and Understanding Convolutional Networks",
               "AlexNet with a smaller 7x7 stride-2 first layer, chosen by visualising what each layer learns; won ILSVRC 2013."),
    "nin": F("NiN", 2013, "Network In Network",
             "1x1 convolutions as a per-pixel MLP, and global average pooling in place of fully connected layers."),
    "vgg": F("VGG", 2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
             "Depth from stacks of 3x3 convolutions only: two see 5x5, three see 7x7, with fewer parameters."),
    "inception": F("Inception", 2014, "Going Deeper with Convolutions",
                   "The Inception module: parallel 1x1, 3x3, 5x5 and pooling branches, with 1x1 bottlenecks to cut cost."),
    "resnet": F("ResNet", 2015, "Deep Residual Learning for Image Recognition",
                "Residual connections (y = F(x) + x) make 152-layer nets trainable; won ILSVRC 2015."),
    "wide_resnet": F("Wide ResNet", 2016, "Wide Residual Networks",
                     "Fewer, wider residual layers: width instead of depth."),
    "squeezenet": F("SqueezeNet", 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
                    "Fire modules: a 1x1 squeeze layer feeding 1x1 and 3x3 expand layers."),
    "resnext": F("ResNeXt", 2017, "Aggregated Residual Transformations for Deep Neural Networks",
                 "Cardinality: residual blocks with grouped convolutions, many parallel paths of the same shape."),
    "densenet": F("DenseNet", 2017, "Densely Connected Convolutional Networks",
                  "Dense connectivity: each layer takes every earlier layer's maps of its block as input (concatenation)."),
    "xception": F("Xception", 2017, "Xception: Deep Learning with Depthwise Separable Convolutions",
                  "Inception taken to the extreme: depthwise separable convolutions with residual connections."),
    "mobilenet": F("MobileNet", 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
                   "Depthwise separable convolutions, with width and resolution multipliers to trade accuracy for cost."),
    "senet": F("SENet", 2017, "Squeeze-and-Excitation Networks",
               "Squeeze-and-excitation blocks re-weight channels from globally pooled features; won ILSVRC 2017."),
    "nasnet": F("NASNet", 2018, "Learning Transferable Architectures for Scalable Image Recognition",
                "Cells found by neural architecture search on CIFAR-10, stacked for ImageNet."),
    "shufflenet": F("ShuffleNet", 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
                    "Channel split and channel shuffle, designed by measured speed rather than FLOPs."),
    "mnasnet": F("MNASNet", 2019, "MnasNet: Platform-Aware Neural Architecture Search for Mobile",
                 "Architecture search with measured phone latency in the objective."),
    "efficientnet": F("EfficientNet", 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
                      "Compound scaling of depth, width and resolution together from a searched base net."),
    "regnet": F("RegNet", 2020, "Designing Network Design Spaces",
                "Widths and depths from a simple quantised linear rule found by exploring design spaces."),
    "vit": F("ViT", 2020, "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
             "A plain Transformer on sequences of 16x16 (or 14x14, 32x32) patches; no convolution beyond the patch embedding."),
    "swin": F("Swin", 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
              "Attention within shifted local windows, in a pyramid of resolutions like a CNN."),
    "convnext": F("ConvNeXt", 2022, "A ConvNet for the 2020s",
                  "A ResNet modernised step by step towards Transformer design choices: 7x7 depthwise convs, LayerNorm, GELU."),
    "maxvit": F("MaxViT", 2022, "MaxViT: Multi-Axis Vision Transformer",
                "Blocked local and dilated global attention, interleaved with MBConv."),
}
del F

# torchvision model id prefix -> family key, year where it differs from the family's, paper where it differs.
_TV_FAMILY_RULES: list[tuple[str, str, int | None]] = [
    (r"alexnet$", "alexnet", None),
    (r"vgg", "vgg", None),
    (r"googlenet$", "inception", None),
    (r"inception_v3$", "inception", 2016),
    (r"resnet\d", "resnet", None),
    (r"resnext", "resnext", None),
    (r"wide_resnet", "wide_resnet", None),
    (r"squeezenet", "squeezenet", None),
    (r"densenet", "densenet", None),
    (r"shufflenet_v2", "shufflenet", None),
    (r"mobilenet_v2$", "mobilenet", 2018),
    (r"mobilenet_v3", "mobilenet", 2019),
    (r"mnasnet", "mnasnet", None),
    (r"efficientnet_b", "efficientnet", None),
    (r"efficientnet_v2", "efficientnet", 2021),
    (r"regnet", "regnet", None),
    (r"vit_", "vit", None),
    (r"swin_v2", "swin", 2022),
    (r"swin_", "swin", None),
    (r"convnext", "convnext", None),
    (r"maxvit", "maxvit", None),
]

# Papers of family members that came later than the family's first paper.
_LATER_PAPERS = {
    "inception_v3": "Rethinking the Inception Architecture for Computer Vision",
    "mobilenet_v2": "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    "mobilenet_v3": "Searching for MobileNetV3",
    "efficientnet_v2": "EfficientNetV2: Smaller Models and Faster Training",
    "swin_v2": "Swin Transformer V2: Scaling Up Capacity and Resolution",
    "inception_v4": "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    "inception_resnet_v2": "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
}


def display_name(model_id: str) -> str:
    """torchvision's ids as the papers write them: resnet50 -> ResNet-50."""
    fixed = {"alexnet": "AlexNet", "googlenet": "GoogLeNet", "inception_v3": "Inception v3"}
    if model_id in fixed:
        return fixed[model_id]
    rules: list[tuple[str, Callable[[re.Match], str]]] = [
        (r"vgg(\d+)(_bn)?$", lambda m: f"VGG-{m[1]}" + ("-BN" if m[2] else "")),
        (r"resnet(\d+)$", lambda m: f"ResNet-{m[1]}"),
        (r"resnext(\d+)_(\w+)$", lambda m: f"ResNeXt-{m[1]} {m[2]}"),
        (r"wide_resnet(\d+)_(\d+)$", lambda m: f"Wide ResNet-{m[1]}-{m[2]}"),
        (r"densenet(\d+)$", lambda m: f"DenseNet-{m[1]}"),
        (r"squeezenet(\d)_(\d)$", lambda m: f"SqueezeNet {m[1]}.{m[2]}"),
        (r"shufflenet_v2_x(\d)_(\d)$", lambda m: f"ShuffleNet v2 x{m[1]}.{m[2]}"),
        (r"mobilenet_v(\d)(?:_(\w+))?$", lambda m: f"MobileNet v{m[1]}" + (f" {m[2].title()}" if m[2] else "")),
        (r"mnasnet(\d)_(\d+)$", lambda m: f"MNASNet {m[1]}.{m[2]}"),
        (r"efficientnet_b(\d)$", lambda m: f"EfficientNet-B{m[1]}"),
        (r"efficientnet_v2_(\w)$", lambda m: f"EfficientNetV2-{m[1].upper()}"),
        (r"regnet_([xy])_(\w+)$", lambda m: f"RegNet{m[1].upper()}-{m[2].replace('_', '.').upper()}"),
        (r"vit_(\w)_(\d+)$", lambda m: f"ViT-{m[1].upper()}/{m[2]}"),
        (r"swin_v2_(\w)$", lambda m: f"Swin V2-{m[1].upper()}"),
        (r"swin_(\w)$", lambda m: f"Swin-{m[1].upper()}"),
        (r"convnext_(\w+)$", lambda m: f"ConvNeXt-{m[1].title()}"),
        (r"maxvit_(\w)$", lambda m: f"MaxViT-{m[1].upper()}"),
    ]
    for pattern, name in rules:
        match = re.match(pattern, model_id)
        if match:
            return name(match)
    raise ValueError(f"No display name rule for {model_id!r}")


def _torchvision_family(model_id: str) -> tuple[Family, int | None]:
    for pattern, key, year in _TV_FAMILY_RULES:
        if re.match(pattern, model_id):
            return FAMILIES[key], year
    raise ValueError(f"No family rule for torchvision model {model_id!r}")


def _paper_override(model_id: str) -> str | None:
    return next((paper for prefix, paper in _LATER_PAPERS.items() if model_id.startswith(prefix)), None)


# Builder arguments that make the architecture match its weights.
_TV_BUILD_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": False},  # its weights drop the aux heads
    "inception_v3": {"aux_logits": True, "init_weights": False},  # its weights carry AuxLogits
}


def _torchvision_entry(model_id: str) -> ModelEntry:
    weights = get_model_weights(model_id).DEFAULT
    crop = weights.transforms().crop_size[0]
    kwargs = dict(_TV_BUILD_KWARGS.get(model_id, {}))
    resolution_kwarg = None
    if model_id.startswith("vit_"):
        resolution_kwarg = "image_size"
        kwargs["image_size"] = crop  # vit_h_14's default weights are 518x518
    metrics = weights.meta["_metrics"]["ImageNet-1K"]
    family, year = _torchvision_family(model_id)
    paper = _paper_override(model_id)
    if paper:
        family = Family(family.name, year or family.year, paper, family.introduced)
    return ModelEntry(
        id=model_id, name=display_name(model_id), family=family, source="torchvision",
        input_size=(3, crop, crop), builder=_with_defaults(partial(get_model, model_id, weights=None), kwargs),
        top1=metrics["acc@1"], top5=metrics["acc@5"], accuracy_source="torchvision",
        citation=f"torchvision {torchvision.__version__}, {weights} metadata", resolution_kwarg=resolution_kwarg,
        year=year, tv_weights=weights,
    )


def _with_defaults(builder: Callable[..., nn.Module], defaults: dict[str, Any]) -> Callable[..., nn.Module]:
    def build(**overrides: Any) -> nn.Module:
        return builder(**{**defaults, **overrides})
    return build


def _timm_builder(name: str) -> Callable[..., nn.Module]:
    def build(**kwargs: Any) -> nn.Module:
        import timm
        return timm.create_model(name, pretrained=False, **kwargs)
    return build


def _accuracy_table() -> dict[str, dict[str, str]]:
    with open(Path(__file__).parent / "data" / "accuracy.csv", newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def _published(model_id: str, table: dict[str, dict[str, str]]) -> dict[str, Any]:
    row = table[model_id]
    return {
        "top1": float(row["top1"]) if row["top1"] else None,
        "top5": float(row["top5"]) if row["top5"] else None,
        "accuracy_source": row["accuracy_source"] if row["top1"] else None,
        "citation": row["citation"],
    }


def _register_all() -> None:
    for model_id in torchvision.models.list_models(module=torchvision.models):
        register_model(_torchvision_entry(model_id))

    table = _accuracy_table()
    classics = [
        ("lenet5", "LeNet-5", "lenet", (1, 32, 32), classic.LeNet5),
        ("alexnet_paper", "AlexNet (paper)", "alexnet", (3, 227, 227), classic.AlexNetPaper),
        ("zfnet", "ZFNet", "zfnet", (3, 224, 224), classic.ZFNet),
        ("zfnet_wide", "ZFNet (512-1024-512)", "zfnet", (3, 224, 224),
         partial(classic.ZFNet, widths=(512, 1024, 512))),
        ("nin", "NiN", "nin", (3, 224, 224), classic.NiN),
    ]
    for model_id, name, family, input_size, builder in classics:
        register_model(ModelEntry(
            id=model_id, name=name, family=FAMILIES[family], source="classic", input_size=input_size,
            builder=builder, **_published(model_id, table),
        ))

    import timm

    # (id, timm name, display name, family, year where it differs from the family's)
    timm_models = [
        ("inception_v4", "inception_v4", "Inception v4", "inception", 2016),
        ("inception_resnet_v2", "inception_resnet_v2", "Inception-ResNet-v2", "inception", 2016),
        ("xception", "legacy_xception", "Xception", "xception", None),
        ("nasnetalarge", "nasnetalarge", "NASNet-A Large", "nasnet", None),
        ("senet154", "senet154", "SENet-154", "senet", None),
        ("mobilenet_v1", "mobilenetv1_100", "MobileNet v1", "mobilenet", None),
        ("efficientnet_lite0", "tf_efficientnet_lite0", "EfficientNet-Lite0", "efficientnet", 2020),
        ("efficientnet_lite1", "tf_efficientnet_lite1", "EfficientNet-Lite1", "efficientnet", 2020),
        ("efficientnet_lite2", "tf_efficientnet_lite2", "EfficientNet-Lite2", "efficientnet", 2020),
    ]
    course_ids = {}
    for model_id, timm_name, name, family, year in timm_models:
        course_ids[timm_name] = model_id
        input_size = tuple(timm.models.get_pretrained_cfg(timm_name).input_size)
        fam = FAMILIES[family]
        paper = _paper_override(model_id)
        if paper:
            fam = Family(fam.name, year or fam.year, paper, fam.introduced)
        register_model(ModelEntry(
            id=model_id, name=name, family=fam, source="timm", input_size=input_size,
            builder=_timm_builder(timm_name), year=year, timm_name=timm_name, **_published(model_id, table),
        ))
    _register_timm_zoo(course_ids)


def _register_timm_zoo(course_ids: dict[str, str]) -> None:
    """``timm-<arch>`` for every architecture timm lists, from the facts file
    (nothing is built); the course's own timm models answer to their timm- form."""
    import timm

    facts = timm_zoo.load_facts()
    for arch in timm.list_models():
        f = facts.get(arch) or timm_zoo.live_facts(arch)
        model_id = timm_zoo.PREFIX + f.arch
        if f.arch in course_ids:
            register_alias(model_id, course_ids[f.arch])
            continue
        # family: timm's model module; paper and year where timm's configs name an arXiv id
        family = Family(f.module, f.year, f.paper_ids, None)
        builder = timm_zoo.timm_builder(f.arch, f.fixed_input_size)
        register_model(ModelEntry(
            id=model_id, name=f.arch, family=family, source="timm", input_size=f.input_size, builder=builder,
            top1=f.top1, top5=f.top5, accuracy_source="timm" if f.top1 is not None else None,
            citation=(f"{timm_zoo.TABLES_CITATION}: {f.arch}.{f.best_tag} at {f.top1_resolution} px"
                      if f.top1 is not None else None),
            resolution_kwarg=builder.resolution_kwarg, year=f.year, timm_name=f.arch, timm=f,
        ))


_register_all()
