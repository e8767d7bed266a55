"""The figures the course's slides quote, as printed, and how the engine
recomputes each (app/lab/numbers.py gives the verdicts).

Decks: an FGV deep-learning course (FGV), a Romanian CNN course (Romanian),
ECE 285 ch. IV (ECE 285), a d2l-based deck (d2l deck), a CS231n-style
lecture 6 (CS231n-style), and CURRICULUM.md's own figures (curriculum).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from pydantic import BaseModel
from torch import nn

from app.analysis_cache import AnalysisCache
from app.lab.lessons import BOTTLENECK_192, BOTTLENECK_480, CS231N_MODULE, inception_data, stack_data
from models.analysis import Analysis, LayerRow, analyse
from models.classic import AlexNetPaper
from models.lecture_variants import d2l_alexnet, googlenet_paper
from models.registry import get_entry

Number = int | float


class VariantValue(BaseModel):
    """The same figure for the variant the quote fits (or was checked against)."""
    label: str
    value: Number


# ------------------------------------------------------------ the engine's side


@dataclass
class Facts:
    """Analyses the claims read, each traced once per computation of the page."""
    cache: AnalysisCache
    _rows: dict[str, dict[str, LayerRow]] = field(default_factory=dict)

    def analysis(self, model_id: str) -> Analysis:
        return self.cache.get(get_entry(model_id))

    def row(self, model_id: str, path: str) -> LayerRow:
        if model_id not in self._rows:
            self._rows[model_id] = {r.path: r for r in self.analysis(model_id).layers}
        return self._rows[model_id][path]

    def params(self, model_id: str) -> int:
        return self.analysis(model_id).totals.params

    def macs(self, model_id: str) -> int:
        return self.analysis(model_id).totals.macs


def weights(row: LayerRow) -> int:
    """A conv or linear row's weights without its biases (the slides' k·k·C_in·C_out)."""
    if not row.attributes.get("bias"):
        return row.params
    channels = row.attributes.get("out_channels", row.attributes.get("out_features"))
    return row.params - channels


def module_weights(model: nn.Module) -> int:
    """Conv and linear weights of a whole network, biases and normalisation left out."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def elements(shape: list[int] | None) -> int:
    n = 1
    for side in shape[1:]:
        n *= side
    return n


@functools.cache
def _variant_analysis(name: str) -> tuple[Analysis, int]:
    """A lecture variant traced on meta, and its conv + linear weights."""
    model, shape = {
        "alexnet_one_gpu": (lambda: AlexNetPaper(groups=1), (1, 3, 227, 227)),
        "d2l_alexnet": (d2l_alexnet, (1, 1, 224, 224)),
        "googlenet_paper": (googlenet_paper, (1, 3, 224, 224)),
    }[name]
    module = model().to("meta")
    return analyse(module, shape), module_weights(module)


def variant_rows(name: str) -> dict[str, LayerRow]:
    return {r.path: r for r in _variant_analysis(name)[0].layers}


# --------------------------------------------------------------------- quotes


@dataclass(frozen=True)
class Figure:
    value: Number
    explanation: str
    variant: VariantValue | None = None


@dataclass(frozen=True)
class Quote:
    id: str
    source: str
    topic: str
    claim: str
    quoted: Number
    unit: str
    step: float        # the quote's last printed digit: 1e6 for "138 million", 0 for an exact figure
    compute: Callable[[Facts], Figure]
    links: tuple[tuple[str, str], ...]
    models: tuple[str, ...] = ()
    below: bool = False
    lab: dict[str, int | bool] | None = None


def _n(value: Number) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def _alexnet_params(f: Facts) -> Figure:
    one_gpu = _variant_analysis("alexnet_one_gpu")[0].totals.params
    return Figure(f.params("alexnet_paper"),
                  f"The paper's AlexNet splits CONV2, CONV4 and CONV5 across two GPUs (grouped convolutions): "
                  f"{_n(f.params('alexnet_paper'))} parameters. On one GPU, every filter sees every channel and "
                  f"the count is {_n(one_gpu)}, which the slide truncates to 62.3 million.",
                  VariantValue(label="AlexNet on one GPU (no groups)", value=one_gpu))


def _alexnet_macs(f: Facts) -> Figure:
    one_gpu = _variant_analysis("alexnet_one_gpu")[0].totals.macs
    return Figure(f.macs("alexnet_paper"),
                  f"The paper's grouped AlexNet needs {_n(f.macs('alexnet_paper'))} multiply-adds at 227x227; "
                  f"the 1.1 billion \"computation units\" are the one-GPU variant's {_n(one_gpu)} multiply-adds.",
                  VariantValue(label="AlexNet on one GPU (no groups)", value=one_gpu))


def _params_of(model_id: str, text: str) -> Callable[[Facts], Figure]:
    def compute(f: Facts) -> Figure:
        return Figure(f.params(model_id), text.format(n=_n(f.params(model_id))))
    return compute


def _macs_of(model_id: str, text: str) -> Callable[[Facts], Figure]:
    def compute(f: Facts) -> Figure:
        return Figure(f.macs(model_id), text.format(n=_n(f.macs(model_id))))
    return compute


def _weights_of(model_id: str, path: str, text: str) -> Callable[[Facts], Figure]:
    def compute(f: Facts) -> Figure:
        row = f.row(model_id, path)
        return Figure(weights(row), text.format(n=_n(weights(row)), params=_n(row.params)))
    return compute


def _conv1_params(f: Facts) -> Figure:
    row = f.row("alexnet_paper", "features.0")
    return Figure(row.params, f"(11·11·3 + 1)·96 = {_n(row.params)} weights and biases; the slide rounds to 35K.")


def _d2l_alexnet_fc(f: Facts) -> Figure:
    paper = weights(f.row("alexnet_paper", "classifier.2"))
    d2l = weights(variant_rows("d2l_alexnet")["14"])
    return Figure(paper, f"AlexNet's first FC layer (FC6) sees 256x6x6 features in the paper's network: "
                         f"{_n(paper)} weights. d2l's AlexNet pads CONV1 by 1 on a 224x224 input, so its last pool "
                         f"gives 256x5x5 and FC6 has {_n(d2l)} weights: the deck's 26M.",
                  VariantValue(label="d2l's AlexNet (224x224, CONV1 padding 1)", value=d2l))


def _googlenet_params(f: Facts) -> Figure:
    tv = f.params("googlenet")
    paper = _variant_analysis("googlenet_paper")[1]
    return Figure(tv, f"torchvision's GoogLeNet (batch norm, 3x3 where the paper's third branch is 5x5, no aux heads) "
                      f"has {_n(tv)} parameters; with the paper's 5x5 kernels its convolutions and FC hold "
                      f"{_n(paper)} weights. 6.8 million is the sum of the paper's Table 1, whose rows do not match "
                      f"the layers they describe (CONV1 is listed as 2.7K; 7·7·3·64 = 9,408).",
                  VariantValue(label="GoogLeNet with the paper's 5x5 kernels, weights only", value=paper))


def _zfnet_params(f: Facts) -> Figure:
    return Figure(f.params("zfnet"),
                  f"ZFNet runs on one GPU, so no convolution is grouped: {_n(f.params('zfnet'))} parameters, more "
                  f"than the grouped AlexNet's {_n(f.params('alexnet_paper'))}. The bound holds for neither.")


def _vgg_table_memory(f: Facts) -> Figure:
    rows = [r for r in f.analysis("vgg16").layers if r.is_leaf and r.type in ("Conv2d", "MaxPool2d", "Linear")]
    total = elements(f.analysis("vgg16").input_shape) + sum(elements(r.output_shape) for r in rows)
    return Figure(total, f"The table's own rows (input, 13 convolutions, 5 pools, 3 FC layers) add up to {_n(total)} "
                         f"values, 15.2M, not 24M ({_n(total * 4)} bytes at 4 bytes each, not 96 MB). ConvZoo's "
                         f"activation total for torchvision's VGG-16 is {_n(f.analysis('vgg16').totals.activation_elements)} "
                         f"values: it also counts the 7x7 adaptive average pool the table lacks.")


def _vgg_table_bytes(f: Facts) -> Figure:
    figure = _vgg_table_memory(f)
    return Figure(figure.value * 4, figure.explanation)


def _locally_connected(kind: str) -> Callable[[Facts], Figure]:
    """ECE 285's example: a 200x200 image and 40,000 hidden units, as real layers on meta."""
    def compute(f: Facts) -> Figure:
        if kind == "fully_connected":
            layer = nn.Linear(200 * 200, 40_000, device="meta")
            n = layer.weight.numel()
            return Figure(n, f"nn.Linear(40,000, 40,000): {_n(n)} weights (each of 40,000 units sees all "
                             f"200·200 pixels), plus 40,000 biases.")
        # One unit per pixel: a 10x10 field, padded (4 before, 5 after) to keep 200x200.
        conv = nn.Conv2d(1, 1, 10, device="meta")
        rows = analyse(nn.Sequential(nn.ZeroPad2d((4, 5, 4, 5)), conv), (1, 1, 200, 200)).layers
        units = elements(rows[-1].output_shape)
        if kind == "locally_connected":
            n = units * conv.weight.numel()
            return Figure(n, f"{_n(units)} units, each with its own 10x10 field: {_n(units)} · 100 = {_n(n)} weights.")
        n = conv.weight.numel()
        return Figure(n, f"Sharing one 10x10 field across all {_n(units)} units is a convolution: {_n(n)} weights "
                         f"(nn.Conv2d(1, 1, 10)), plus one bias.")
    return compute


def _inception(naive: bool) -> Callable[[Facts], Figure]:
    def compute(f: Facts) -> Figure:
        params = CS231N_MODULE_NAIVE if naive else CS231N_MODULE
        module = inception_data(**params)
        macs = module.total.macs
        if naive:
            return Figure(macs, f"28·28·(128·1·1·256 + 192·3·3·256 + 96·5·5·256) = {_n(macs)} multiply-adds; "
                                f"the slide rounds to 854M.")
        parts = ", ".join(f"{b.name} {_n(b.macs)}" for b in module.branches)
        return Figure(macs, f"With 64-filter 1x1 reductions the branches cost {parts}: {_n(macs)} multiply-adds in "
                            f"all. The slide lists the same six layers and totals them to 358M, an addition error.")
    return compute


def _lesson_bottleneck(params: dict[str, int | bool], what: str, text: str) -> Callable[[Facts], Figure]:
    def compute(f: Facts) -> Figure:
        module = inception_data(**params)
        value = module.total.weights if what == "weights" else module.total.macs
        return Figure(value, text.format(n=_n(value)))
    return compute


def _stack_rf(layers: int) -> Callable[[Facts], Figure]:
    def compute(f: Facts) -> Figure:
        lesson = stack_data(kernel=3, layers=layers, channels=64, size=56)
        rf = lesson.stack.receptive_field
        return Figure(rf, f"Each 3x3 layer (stride 1) adds 2 pixels: 3 + 2·{layers - 1} = {rf}.")
    return compute


def _stack_ratio(f: Facts) -> Figure:
    lesson = stack_data(kernel=3, layers=3, channels=64, size=56)
    ratio = lesson.single.weights / lesson.stack.weights
    return Figure(round(ratio, 6), f"One 7x7 layer has {_n(lesson.single.weights)} weights on 64 channels, three 3x3 "
                                   f"layers {_n(lesson.stack.weights)}: 49/27 = {ratio:.4f}.")


def _conv1_side(f: Facts) -> Figure:
    side = f.row("alexnet_paper", "features.0").output_shape[-1]
    return Figure(side, f"(227 − 11 + 2·0)/4 + 1 = {side}: the engine's CONV1 output is 96x{side}x{side}.")


CS231N_MODULE_NAIVE = {**CS231N_MODULE, "c3r": 0, "c5r": 0, "pool_proj": 0}


def _calculator(params: dict[str, int | bool]) -> tuple[str, str]:
    """The lab's inception calculator opened on this module."""
    query = urlencode({k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()})
    return ("lab: the inception module", f"/lab?{query}#bottleneck")


def _model(model_id: str, label: str) -> tuple[str, str]:
    return (label, f"/models/{model_id}")


def _row(model_id: str, path: str, label: str) -> tuple[str, str]:
    return (label, f"/models/{model_id}#layer-{path}")


# The CS231n-style VGG-16 table: (row, layer path or None for the input,
# memory as printed, its last digit, weights as printed).
VGG_TABLE = (
    ("INPUT [224x224x3]", None, 150_000, 10_000, 0),
    ("CONV3-64 [224x224x64]", "features.0", 3_200_000, 100_000, 1_728),
    ("CONV3-64 [224x224x64]", "features.2", 3_200_000, 100_000, 36_864),
    ("POOL2 [112x112x64]", "features.4", 800_000, 100_000, 0),
    ("CONV3-128 [112x112x128]", "features.5", 1_600_000, 100_000, 73_728),
    ("CONV3-128 [112x112x128]", "features.7", 1_600_000, 100_000, 147_456),
    ("POOL2 [56x56x128]", "features.9", 400_000, 100_000, 0),
    ("CONV3-256 [56x56x256]", "features.10", 800_000, 100_000, 294_912),
    ("CONV3-256 [56x56x256]", "features.12", 800_000, 100_000, 589_824),
    ("CONV3-256 [56x56x256]", "features.14", 800_000, 100_000, 589_824),
    ("POOL2 [28x28x256]", "features.16", 200_000, 100_000, 0),
    ("CONV3-512 [28x28x512]", "features.17", 400_000, 100_000, 1_179_648),
    ("CONV3-512 [28x28x512]", "features.19", 400_000, 100_000, 2_359_296),
    ("CONV3-512 [28x28x512]", "features.21", 400_000, 100_000, 2_359_296),
    ("POOL2 [14x14x512]", "features.23", 100_000, 100_000, 0),
    ("CONV3-512 [14x14x512]", "features.24", 100_000, 100_000, 2_359_296),
    ("CONV3-512 [14x14x512]", "features.26", 100_000, 100_000, 2_359_296),
    ("CONV3-512 [14x14x512]", "features.28", 100_000, 100_000, 2_359_296),
    ("POOL2 [7x7x512]", "features.30", 25_000, 1_000, 0),
    ("FC [1x1x4096]", "classifier.0", 4_096, 0, 102_760_448),
    ("FC [1x1x4096]", "classifier.3", 4_096, 0, 16_777_216),
    ("FC [1x1x1000]", "classifier.6", 1_000, 0, 4_096_000),
)


def _vgg_row_memory(path: str | None) -> Callable[[Facts], Figure]:
    def compute(f: Facts) -> Figure:
        shape = f.analysis("vgg16").input_shape if path is None else f.row("vgg16", path).output_shape
        n = elements(shape)
        return Figure(n, f"{'×'.join(map(str, shape[1:]))} = {_n(n)} values.")
    return compute


def _vgg_row_weights(path: str | None) -> Callable[[Facts], Figure]:
    def compute(f: Facts) -> Figure:
        if path is None:
            return Figure(0, "The input has no weights.")
        row = f.row("vgg16", path)
        n = weights(row)
        if not n:
            return Figure(0, "Pooling has no weights.")
        return Figure(n, f"{_n(n)} weights; with its {_n(row.params - n)} biases the layer holds {_n(row.params)} "
                         f"parameters (the table counts weights only).")
    return compute


def _vgg_table_quotes() -> list[Quote]:
    quotes = []
    for i, (label, path, memory, step, weight) in enumerate(VGG_TABLE):
        links = (_row("vgg16", path, f"VGG-16 {path}") if path else _model("vgg16", "VGG-16"),)
        printed = f"{memory / 1e6:g}M" if memory >= 1e6 else (f"{memory // 1000}K" if step else str(memory))
        quotes.append(Quote(f"cs231n-vgg16-row{i}-memory", "CS231n-style", "VGG-16, layer by layer (CS231n-style)",
                            f"{label} memory: {printed}", memory, "values", step, _vgg_row_memory(path), links,
                            ("vgg16",)))
        quotes.append(Quote(f"cs231n-vgg16-row{i}-weights", "CS231n-style", "VGG-16, layer by layer (CS231n-style)",
                            f"{label} weights: {weight:,}", weight, "weights", 0, _vgg_row_weights(path), links,
                            ("vgg16",)))
    return quotes


QUOTES: list[Quote] = [
    # AlexNet and ZFNet
    Quote("fgv-alexnet-params", "FGV", "AlexNet and ZFNet", "AlexNet: 62.3 million parameters", 62_300_000,
          "parameters", 100_000, _alexnet_params, (_model("alexnet_paper", "AlexNet (paper)"),), ("alexnet_paper",)),
    Quote("fgv-alexnet-macs", "FGV", "AlexNet and ZFNet", "AlexNet: 1.1 billion computation units",
          1_100_000_000, "MACs", 100_000_000, _alexnet_macs, (_model("alexnet_paper", "AlexNet (paper)"),),
          ("alexnet_paper",)),
    Quote("ece285-alexnet-params", "ECE 285", "AlexNet and ZFNet", "AlexNet: 60 million parameters", 60_000_000,
          "parameters", 1_000_000,
          _params_of("alexnet_paper", "The paper's network (two-GPU groups, 227x227) has {n} parameters: "
                                      "60 million, truncated."),
          (_model("alexnet_paper", "AlexNet (paper)"),), ("alexnet_paper",)),
    Quote("cs231n-alexnet-conv1", "CS231n-style", "AlexNet and ZFNet", "CONV1: (11*11*3 + 1)*96 = 35K parameters",
          35_000, "parameters", 1_000, _conv1_params, (_row("alexnet_paper", "features.0", "AlexNet (paper) CONV1"),),
          ("alexnet_paper",)),
    Quote("curriculum-alexnet-conv1-side", "curriculum", "AlexNet and ZFNet", "CONV1: (227 - 11)/4 + 1 = 55", 55,
          "pixels", 0, _conv1_side, (_row("alexnet_paper", "features.0", "AlexNet (paper) CONV1"),
                                     ("lab: output size", "/lab#output-size")), ("alexnet_paper",)),
    Quote("ece285-zfnet-params", "ECE 285", "AlexNet and ZFNet", "ZFNet: < 60 million parameters", 60_000_000,
          "parameters", 0, _zfnet_params, (_model("zfnet", "ZFNet"), _model("alexnet_paper", "AlexNet (paper)")),
          ("zfnet",), below=True),
    # VGG-16
    Quote("fgv-vgg16-params", "FGV, Romanian, CS231n-style", "VGG-16", "VGG-16: 138 million parameters", 138_000_000,
          "parameters", 1_000_000, _params_of("vgg16", "{n} parameters: 138 million, rounded."),
          (_model("vgg16", "VGG-16"),), ("vgg16",)),
    Quote("ece285-vgg16-params", "ECE 285", "VGG-16", "VGG-16: 140 million parameters", 140_000_000, "parameters",
          10_000_000, _params_of("vgg16", "{n} parameters, rounded to two significant digits."),
          (_model("vgg16", "VGG-16"),), ("vgg16",)),
    Quote("curriculum-vgg16-macs", "curriculum", "VGG-16", "VGG-16: ~15.5G multiply-adds at 224x224",
          15_500_000_000, "MACs", 100_000_000, _macs_of("vgg16", "{n} multiply-adds at 224x224: 15.5G, rounded."),
          (_model("vgg16", "VGG-16"),), ("vgg16",)),
    Quote("cs231n-vgg16-total-memory", "CS231n-style", "VGG-16", "TOTAL memory: 24M values (forward)", 24_000_000,
          "values", 1_000_000, _vgg_table_memory, (_model("vgg16", "VGG-16"),), ("vgg16",)),
    Quote("cs231n-vgg16-total-bytes", "CS231n-style", "VGG-16", "TOTAL memory: 24M * 4 bytes ~= 96MB / image (forward)",
          96_000_000, "bytes", 1_000_000, _vgg_table_bytes, (_model("vgg16", "VGG-16"),), ("vgg16",)),
    Quote("curriculum-vgg16-fc", "curriculum", "VGG-16", "FC6: 7*7*512*4096 = 102,760,448 weights", 102_760_448,
          "weights", 0, _weights_of("vgg16", "classifier.0", "{n} weights, exactly; {params} with biases."),
          (_row("vgg16", "classifier.0", "VGG-16 FC6"),), ("vgg16",)),
    Quote("d2l-lenet-fc", "d2l deck", "The first fully connected layer", "LeNet: 16x5x5x120 = 48k", 48_000,
          "weights", 1_000,
          _weights_of("lenet5", "classifier.1", "LeNet-5's C5 holds {n} weights ({params} with biases)."),
          (_row("lenet5", "classifier.1", "LeNet-5 C5"),), ("lenet5",)),
    Quote("d2l-alexnet-fc", "d2l deck", "The first fully connected layer", "AlexNet: 256x5x5x4096 = 26M", 26_000_000,
          "weights", 1_000_000,
          _d2l_alexnet_fc, (_row("alexnet_paper", "classifier.2", "AlexNet (paper) FC6"),), ("alexnet_paper",)),
    Quote("d2l-vgg16-fc", "d2l deck", "The first fully connected layer", "VGG: 512x7x7x4096 = 102M", 102_000_000,
          "weights", 1_000_000,
          _weights_of("vgg16", "classifier.0", "VGG-16's FC6 holds {n} weights ({params} with biases): 102M, "
                                               "truncated."),
          (_row("vgg16", "classifier.0", "VGG-16 FC6"),), ("vgg16",)),
    *_vgg_table_quotes(),
    # GoogLeNet and the inception module
    Quote("ece285-googlenet-params", "ECE 285", "GoogLeNet and the 1x1 bottleneck", "GoogLeNet: 6.8 million parameters",
          6_800_000, "parameters", 100_000, _googlenet_params, (_model("googlenet", "GoogLeNet"),), ("googlenet",)),
    Quote("cs231n-inception-naive", "CS231n-style", "GoogLeNet and the 1x1 bottleneck",
          "Naive inception module on 28x28x256 (128 1x1, 192 3x3, 96 5x5, pool): 854M ops", 854_000_000, "MACs",
          1_000_000, _inception(True), (_calculator(CS231N_MODULE),), (), lab=CS231N_MODULE),
    Quote("cs231n-inception-reduced", "CS231n-style", "GoogLeNet and the 1x1 bottleneck",
          "The same module with 64-filter 1x1 bottlenecks: 358M ops", 358_000_000, "MACs", 1_000_000,
          _inception(False), (_calculator(CS231N_MODULE),), (), lab=CS231N_MODULE),
    Quote("curriculum-bottleneck-480-weights", "curriculum", "GoogLeNet and the 1x1 bottleneck",
          "480 -> 48 5x5 filters on 14x14: 576K weights", 576_000, "weights", 1_000,
          _lesson_bottleneck({**BOTTLENECK_480, "c5r": 0}, "weights", "5·5·480·48 = {n} weights."),
          (_calculator(BOTTLENECK_480),), (), lab=BOTTLENECK_480),
    Quote("curriculum-bottleneck-480-macs", "curriculum", "GoogLeNet and the 1x1 bottleneck",
          "480 -> 48 5x5 filters on 14x14: 112.9M ops", 112_900_000, "MACs", 100_000,
          _lesson_bottleneck({**BOTTLENECK_480, "c5r": 0}, "macs", "14·14·48·5·5·480 = {n} multiply-adds."),
          (_calculator(BOTTLENECK_480),), (), lab=BOTTLENECK_480),
    Quote("curriculum-bottleneck-480-reduced-weights", "curriculum", "GoogLeNet and the 1x1 bottleneck",
          "... with a 16-filter 1x1 reduction first: 26.9K weights", 26_900, "weights", 100,
          _lesson_bottleneck(BOTTLENECK_480, "weights", "480·16 + 5·5·16·48 = {n} weights."),
          (_calculator(BOTTLENECK_480),), (), lab=BOTTLENECK_480),
    Quote("curriculum-bottleneck-480-reduced-macs", "curriculum", "GoogLeNet and the 1x1 bottleneck",
          "... with a 16-filter 1x1 reduction first: 5.27M ops", 5_270_000, "MACs", 10_000,
          _lesson_bottleneck(BOTTLENECK_480, "macs", "14·14·(480·16 + 5·5·16·48) = {n} multiply-adds."),
          (_calculator(BOTTLENECK_480),), (), lab=BOTTLENECK_480),
    Quote("curriculum-bottleneck-192-macs", "curriculum", "GoogLeNet and the 1x1 bottleneck",
          "5x5, 32 filters on 28x28x192: 120M ops", 120_000_000, "MACs", 1_000_000,
          _lesson_bottleneck({**BOTTLENECK_192, "c5r": 0}, "macs", "28·28·32·5·5·192 = {n} multiply-adds."),
          (_calculator(BOTTLENECK_192),), (), lab=BOTTLENECK_192),
    Quote("curriculum-bottleneck-192-reduced-macs", "curriculum", "GoogLeNet and the 1x1 bottleneck",
          "... with a 16-filter reduction: 12M ops", 12_000_000, "MACs", 1_000_000,
          _lesson_bottleneck(BOTTLENECK_192, "macs", "28·28·(192·16 + 5·5·16·32) = {n} multiply-adds: 12M, "
                                                     "truncated."),
          (_calculator(BOTTLENECK_192),), (), lab=BOTTLENECK_192),
    # Receptive fields
    Quote("curriculum-rf-two", "curriculum", "Receptive fields", "Two stacked 3x3 convolutions see 5x5", 5, "pixels",
          0, _stack_rf(2), (("lab: receptive field", "/lab#receptive-field"),)),
    Quote("curriculum-rf-three", "curriculum", "Receptive fields", "Three stacked 3x3 convolutions see 7x7", 7,
          "pixels", 0, _stack_rf(3), (("lab: receptive field", "/lab#receptive-field"),)),
    Quote("curriculum-rf-ratio", "curriculum", "Receptive fields", "7*7*D*D vs 3*(3*3*D*D) parameters: 49/27 = 1.81x",
          1.81, "ratio", 0.01, _stack_ratio, (("lab: receptive field", "/lab#receptive-field"),)),
    # Deeper nets and mobile nets
    Quote("ece285-resnet152-params", "ECE 285", "ResNet, DenseNet, MobileNet", "ResNet(-152): 60 million parameters",
          60_000_000, "parameters", 1_000_000, _params_of("resnet152", "ResNet-152 has {n} parameters: 60 million, "
                                                                       "rounded."),
          (_model("resnet152", "ResNet-152"),), ("resnet152",)),
    Quote("ece285-densenet-params", "ECE 285", "ResNet, DenseNet, MobileNet", "DenseNet: 20 million parameters",
          20_000_000, "parameters", 1_000_000,
          _params_of("densenet201", "DenseNet-201, the largest of torchvision's DenseNets, has {n} parameters: "
                                    "20 million, rounded (DenseNet-121 has 8.0 million)."),
          (_model("densenet201", "DenseNet-201"), _model("densenet121", "DenseNet-121")), ("densenet201",)),
    Quote("ece285-mobilenet-params", "ECE 285", "ResNet, DenseNet, MobileNet", "MobileNet: 4.2 million parameters",
          4_200_000, "parameters", 100_000, _params_of("mobilenet_v1", "MobileNet v1 (width 1.0) has {n} "
                                                                       "parameters: 4.2 million, rounded."),
          (_model("mobilenet_v1", "MobileNet v1"),), ("mobilenet_v1",)),
    Quote("romanian-mobilenet-params", "Romanian", "ResNet, DenseNet, MobileNet",
          "MobileNet: 4.2M parameters", 4_200_000, "parameters", 100_000,
          _params_of("mobilenet_v1", "{n} parameters: 4.2M, rounded."),
          (_model("mobilenet_v1", "MobileNet v1"), ("lab: MobileNet width x resolution", "/lab#mobilenet")),
          ("mobilenet_v1",)),
    Quote("romanian-mobilenet-macs", "Romanian", "ResNet, DenseNet, MobileNet",
          "MobileNet: 569M multiply-adds (224x224)", 569_000_000, "MACs", 1_000_000,
          _macs_of("mobilenet_v1", "{n} multiply-adds at 224x224: 569M, rounded."),
          (_model("mobilenet_v1", "MobileNet v1"), ("lab: MobileNet width x resolution", "/lab#mobilenet")),
          ("mobilenet_v1",)),
    Quote("curriculum-lenet-params", "curriculum", "ResNet, DenseNet, MobileNet", "LeNet-5: ~60 thousand parameters",
          60_000, "parameters", 10_000, _params_of("lenet5", "{n} parameters: about 60 thousand, rounded."),
          (_model("lenet5", "LeNet-5"),), ("lenet5",)),
    # Why convolutions: ECE 285's locally connected example
    Quote("ece285-fully-connected", "ECE 285", "Why convolutions",
          "200x200 image, 40,000 hidden units, fully connected: 1.6 billion parameters", 1_600_000_000, "weights", 0,
          _locally_connected("fully_connected"), (("lab: receptive field", "/lab#receptive-field"),)),
    Quote("ece285-locally-connected", "ECE 285", "Why convolutions",
          "... locally connected, 10x10 fields: 4 million parameters", 4_000_000, "weights", 0,
          _locally_connected("locally_connected"), (("lab: receptive field", "/lab#receptive-field"),)),
    Quote("ece285-shared-weights", "ECE 285", "Why convolutions", "... with shared weights: 100 parameters", 100,
          "weights", 0, _locally_connected("shared"), (("lab: receptive field", "/lab#receptive-field"),)),
]
