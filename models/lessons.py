"""The small networks the course lab is computed on.

Each lesson builds the actual modules (an inception module, a stack of
convolutions, a depthwise separable pair, MobileNet v1 at a width multiplier)
on the meta device and runs the zoo's own analysis engine on them, so the lab
and the zoo count parameters, multiply-adds and receptive fields in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache, partial

import torch
from torch import nn

from models.analysis import Analysis, analyse, analyse_entry
from models.build import build_on_meta
from models.registry import get_entry


@dataclass(frozen=True)
class LayerCost:
    """One leaf layer as the engine saw it; weights and biases apart, as the slides count them."""
    path: str
    kind: str
    in_channels: int
    out_channels: int
    weights: int
    biases: int
    macs: int
    output_shape: list[int]
    receptive_field: int | None


def kind_of(module: nn.Module) -> str:
    """'conv3x3', 'conv1x7', 'maxpool3x3' ...; a depthwise conv is 'depthwise3x3'."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        if module.groups > 1 and module.groups == module.in_channels:
            return f"depthwise{kh}x{kw}"
        return f"conv{kh}x{kw}"
    if isinstance(module, nn.MaxPool2d):
        k = module.kernel_size
        return f"maxpool{k}x{k}" if isinstance(k, int) else f"maxpool{k[0]}x{k[1]}"
    return type(module).__name__.lower()


def layer_costs(model: nn.Module, input_shape: tuple[int, int, int, int]) -> list[LayerCost]:
    """Trace ``model`` (on meta) and return its convolution and pooling layers in execution order."""
    analysis: Analysis = analyse(model.to("meta"), input_shape)
    modules = dict(model.named_modules())
    costs = []
    for row in analysis.layers:
        module = modules[row.path]
        if not (row.is_leaf and row.executed) or not isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            continue
        channels = row.input_shape[1]
        conv = isinstance(module, nn.Conv2d)
        costs.append(LayerCost(
            path=row.path, kind=kind_of(module), in_channels=channels,
            out_channels=module.out_channels if conv else channels,
            weights=module.weight.numel() if conv else 0,
            biases=module.bias.numel() if conv and module.bias is not None else 0,
            macs=row.macs, output_shape=row.output_shape, receptive_field=row.receptive_field,
        ))
    return costs


def same_conv(in_channels: int, out_channels: int, kernel: int | tuple[int, int], groups: int = 1) -> nn.Conv2d:
    """Stride 1, 'same' padding (odd kernels), with a bias."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return nn.Conv2d(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2), groups=groups, device="meta")


class Inception(nn.Module):
    """GoogLeNet's module: parallel branches concatenated along channels.

    A reduction of 0 leaves out that branch's 1x1 layer (the naive module); a
    main filter count of 0 leaves out the branch; ``pool_proj`` 0 lets the
    pooled input through unchanged, and ``pool=False`` leaves the pool out."""

    def __init__(self, channels: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int,
                 pool: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleDict()
        if c1:
            self.branches["1x1"] = nn.Sequential(same_conv(channels, c1, 1))
        for name, reduction, filters, kernel in (("3x3", c3r, c3, 3), ("5x5", c5r, c5, 5)):
            if filters:
                layers = [same_conv(channels, reduction, 1)] if reduction else []
                layers.append(same_conv(reduction or channels, filters, kernel))
                self.branches[name] = nn.Sequential(*layers)
        if pool:
            layers = [nn.MaxPool2d(3, stride=1, padding=1)]
            if pool_proj:
                layers.append(same_conv(channels, pool_proj, 1))
            self.branches["pool"] = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches.values()], dim=1)


def stack(channels_in: int, channels: int, kernels: list[int | tuple[int, int]], relu: bool = True) -> nn.Sequential:
    """Convolutions one after another ('same' padding), each followed by a ReLU."""
    layers: list[nn.Module] = []
    for i, kernel in enumerate(kernels):
        layers.append(same_conv(channels_in if i == 0 else channels, channels, kernel))
        if relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def separable(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """MobileNet's depthwise (one k x k filter per input channel) then pointwise (1x1) pair."""
    return nn.Sequential(same_conv(in_channels, in_channels, kernel, groups=in_channels),
                         same_conv(in_channels, out_channels, 1))


@lru_cache(maxsize=4)
def googlenet_inception(name: str = "inception3a") -> dict[str, int]:
    """An inception module's configuration read from torchvision's GoogLeNet
    (which uses a 3x3 kernel where the paper's 5x5 branch is; only the filter
    counts are taken), with its input size from the analysis."""
    entry = get_entry("googlenet")
    model = build_on_meta(entry)
    block = getattr(model, name)
    rows = {row.path: row for row in analyse_entry(entry).layers}
    _, channels, height, width = rows[name].input_shape
    return {
        "height": height, "width": width, "channels": channels,
        "c1": block.branch1.conv.out_channels,
        "c3r": block.branch2[0].conv.out_channels, "c3": block.branch2[1].conv.out_channels,
        "c5r": block.branch3[0].conv.out_channels, "c5": block.branch3[1].conv.out_channels,
        "pool_proj": block.branch4[1].conv.out_channels,
    }


MOBILENET_MULTIPLIERS = (0.25, 0.5, 0.75, 1.0)
MOBILENET_RESOLUTIONS = (128, 160, 192, 224)


def _mobilenet_v1(multiplier: float) -> nn.Module:
    # timm registers only the 1.0 (and 1.25) widths; its generator takes any multiplier.
    from timm.models.efficientnet import _gen_mobilenet_v1

    return _gen_mobilenet_v1("mobilenetv1_100", channel_multiplier=multiplier)


@lru_cache(maxsize=1)
def mobilenet_v1_grid() -> tuple[tuple[float, int, int, int], ...]:
    """(width multiplier, resolution, params, MACs) for MobileNet v1 over the
    paper's grid, each cell traced by the engine on the real architecture."""
    base = get_entry("mobilenet_v1")
    cells = []
    for multiplier in MOBILENET_MULTIPLIERS:
        entry = replace(base, id=f"mobilenet_v1_{multiplier}", builder=partial(_mobilenet_v1, multiplier))
        for resolution in MOBILENET_RESOLUTIONS:
            totals = analyse_entry(entry, resolution).totals
            cells.append((multiplier, resolution, totals.params, totals.macs))
    return tuple(cells)


def torch_output_size(op: str, size: int, kernel: int, padding: int, stride: int, dilation: int,
                      ceil_mode: bool) -> int:
    """The side PyTorch itself gives a square input (on meta), for checking the
    formula; raises ValueError/RuntimeError with torch's reason if it refuses."""
    if op == "conv":
        layer: nn.Module = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation, device="meta")
    elif op == "maxpool":
        layer = nn.MaxPool2d(kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    else:
        layer = nn.AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    with torch.no_grad():
        return layer(torch.empty(1, 1, size, size, device="meta")).shape[-1]
