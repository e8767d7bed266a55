"""The course lab's lessons as data: each calculator builds the real small
network (models/lessons.py), lets the analysis engine count it, and returns a
Pydantic model that is both the /api/lab/... body and what /lab renders.
Bad parameters raise InvalidParameter with the reason."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from app.errors import InvalidParameter
from app.lab.figures import bottleneck_figure, mobilenet_figure
from models import lessons
from models.analysis import MAX_RESOLUTION

# The calculators' bounds: declared on the API's Query parameters and stated beside each input on the page.
LIMITS = {"side": MAX_RESOLUTION, "channels": 8192, "kernel": 31, "layers": 16, "dilation": 64}

# ---------------------------------------------------------------- inception


class LessonLayer(BaseModel):
    """A convolution or pooling layer as the engine counted it (weights without biases)."""
    kind: str
    in_channels: int
    out_channels: int
    weights: int
    biases: int
    macs: int


class InceptionBranch(BaseModel):
    name: Literal["1x1", "3x3", "5x5", "pool"]
    layers: list[LessonLayer]
    weights: int
    macs: int
    output_channels: int


class CostTotal(BaseModel):
    weights: int
    biases: int
    macs: int


class InceptionResult(BaseModel):
    """shared/API.md's "Lab: inception module" body, exactly."""
    input_shape: list[int]
    output_shape: list[int]
    branches: list[InceptionBranch]
    total: CostTotal


def _layer(cost: lessons.LayerCost) -> LessonLayer:
    return LessonLayer(kind=cost.kind, in_channels=cost.in_channels, out_channels=cost.out_channels,
                          weights=cost.weights, biases=cost.biases, macs=cost.macs)


def _total(layers: list[LessonLayer]) -> CostTotal:
    return CostTotal(weights=sum(x.weights for x in layers), biases=sum(x.biases for x in layers),
                     macs=sum(x.macs for x in layers))


def inception_data(height: int, width: int, channels: int, c1: int, c3r: int, c3: int, c5r: int, c5: int,
                   pool_proj: int, pool: bool = True) -> InceptionResult:
    module = lessons.Inception(channels, c1, c3r, c3, c5r, c5, pool_proj, pool)
    if not module.branches:
        raise InvalidParameter("Every branch is left out: give c1, c3, c5 a filter count above 0, "
                               "or keep the pool branch.")
    costs = lessons.layer_costs(module, (1, channels, height, width))
    branches = []
    for name in module.branches:
        layers = [_layer(c) for c in costs if c.path.startswith(f"branches.{name}.")]
        branches.append(InceptionBranch(name=name, layers=layers, weights=sum(x.weights for x in layers),
                                        macs=sum(x.macs for x in layers), output_channels=layers[-1].out_channels))
    all_layers = [layer for branch in branches for layer in branch.layers]
    out_channels = sum(b.output_channels for b in branches)
    return InceptionResult(input_shape=[channels, height, width], output_shape=[out_channels, height, width],
                           branches=branches, total=_total(all_layers))


class BottleneckLesson(BaseModel):
    """The module as asked beside the naive one (no 1x1 reductions, the pool passing its depth through)."""
    naive: InceptionResult
    reduced: InceptionResult
    weights_ratio: float  # naive / reduced
    macs_ratio: float
    figure: dict[str, Any]


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def bottleneck_data(height: int, width: int, channels: int, c1: int, c3r: int, c3: int, c5r: int, c5: int,
                    pool_proj: int, pool: bool = True) -> BottleneckLesson:
    reduced = inception_data(height, width, channels, c1, c3r, c3, c5r, c5, pool_proj, pool)
    naive = inception_data(height, width, channels, c1, 0, c3, 0, c5, 0, pool)
    return BottleneckLesson(naive=naive, reduced=reduced,
                            weights_ratio=_ratio(naive.total.weights, reduced.total.weights),
                            macs_ratio=_ratio(naive.total.macs, reduced.total.macs),
                            figure=bottleneck_figure([b.model_dump() for b in naive.branches],
                                                     [b.model_dump() for b in reduced.branches]))


# -------------------------------------------------------------- output size

Op = Literal["conv", "maxpool", "avgpool"]


class OutputSizeLesson(BaseModel):
    op: Op
    size: int
    kernel: int
    padding: int
    stride: int
    dilation: int
    ceil_mode: bool
    effective_kernel: int   # dilation * (kernel - 1) + 1
    numerator: int          # size + 2 * padding - effective_kernel
    exact: bool             # numerator divisible by stride
    floor: int              # numerator // stride + 1
    ceil: int               # ceil(numerator / stride) + 1
    last_window_dropped: bool  # ceil_mode's rule removed a window starting in the right padding
    output: int             # what the formula says PyTorch gives
    torch_output: int       # what PyTorch gave, on meta
    steps: list[str]


def output_size_data(op: Op, size: int, kernel: int, padding: int = 0, stride: int = 1, dilation: int = 1,
                     ceil_mode: bool = False) -> OutputSizeLesson:
    if op == "conv" and ceil_mode:
        raise InvalidParameter("ceil_mode applies to pooling only; a convolution always floors.")
    if op == "avgpool" and dilation != 1:
        raise InvalidParameter("Average pooling has no dilation in PyTorch; set dilation to 1.")
    effective = dilation * (kernel - 1) + 1
    numerator = size + 2 * padding - effective
    if numerator < 0:
        raise InvalidParameter(f"The kernel spans {effective} pixels but the padded input is only "
                               f"{size + 2 * padding}: there is nowhere to put it.")
    floor, ceil = numerator // stride + 1, -(-numerator // stride) + 1
    output, dropped = floor, False
    if ceil_mode and (ceil - 1) * stride >= size + padding:
        output, dropped = ceil - 1, True
    elif ceil_mode:
        output = ceil
    try:
        torch_output = lessons.torch_output_size(op, size, kernel, padding, stride, dilation, ceil_mode)
    except (RuntimeError, ValueError) as exc:
        raise InvalidParameter(f"PyTorch refuses this layer: {exc}.") from None
    kernel_text = f"F = {kernel}" if dilation == 1 else f"D(F - 1) + 1 = {dilation}*({kernel} - 1) + 1 = {effective}"
    steps = [
        f"Effective kernel: {kernel_text} pixels.",
        f"W' = (W - F + 2P)/S + 1 = ({size} - {effective} + 2*{padding})/{stride} + 1 = {numerator}/{stride} + 1.",
    ]
    if numerator % stride == 0:
        steps.append(f"{numerator}/{stride} is exact: the windows tile the padded input with nothing left over, "
                     f"so W' = {floor}.")
    else:
        rest = numerator % stride
        steps.append(f"{numerator}/{stride} = {numerator / stride:.2f} is not whole: after the last full step "
                     f"{rest} pixel{'s' if rest > 1 else ''} of the padded input remain{'' if rest > 1 else 's'}.")
        if not ceil_mode:
            steps.append(f"PyTorch floors: W' = {floor}; the last {rest} pixel{'s' if rest > 1 else ''} of the "
                         f"padded input fall{'' if rest > 1 else 's'} outside every window"
                         f"{' (ceil_mode=True would round up)' if op != 'conv' else ''}.")
        else:
            steps.append(f"ceil_mode=True rounds up to {ceil}: one more window that hangs over the right border, "
                         f"allowed only if it starts inside the input or the left padding, "
                         f"i.e. (W' - 1)*S < W + P.")
            start = (ceil - 1) * stride
            if dropped:
                steps.append(f"Here it would start at {start} >= W + P = {size + padding}, wholly in the right "
                             f"padding, so PyTorch drops it: W' = {output}.")
            else:
                steps.append(f"It starts at {start} < W + P = {size + padding}: kept, W' = {output}.")
    return OutputSizeLesson(op=op, size=size, kernel=kernel, padding=padding, stride=stride, dilation=dilation,
                            ceil_mode=ceil_mode, effective_kernel=effective, numerator=numerator,
                            exact=numerator % stride == 0, floor=floor, ceil=ceil, last_window_dropped=dropped,
                            output=output, torch_output=torch_output, steps=steps)


# ----------------------------------------------- stacks, factorisation, separable


class Variant(BaseModel):
    """One way to build the layer: its convolutions as the engine counted them."""
    name: str
    layers: list[LessonLayer]
    weights: int
    biases: int
    macs: int
    receptive_field: int      # after the last layer
    nonlinearities: int       # one ReLU after each convolution
    receptive_fields: list[int]  # after each layer


def _variant(name: str, model, input_shape: tuple[int, int, int, int]) -> Variant:
    costs = lessons.layer_costs(model, input_shape)
    layers = [_layer(c) for c in costs]
    total = _total(layers)
    return Variant(name=name, layers=layers, weights=total.weights, biases=total.biases, macs=total.macs,
                   receptive_field=costs[-1].receptive_field, nonlinearities=len(costs),
                   receptive_fields=[c.receptive_field for c in costs])


def _odd(name: str, value: int) -> None:
    if value % 2 == 0:
        raise InvalidParameter(f"{name} must be odd: 'same' padding centres the kernel; got {value}.")


class StackLesson(BaseModel):
    kernel: int
    layers: int
    channels: int
    size: int
    stack: Variant
    single: Variant
    weights_ratio: float   # single / stack
    macs_ratio: float


def stack_data(kernel: int, layers: int, channels: int, size: int) -> StackLesson:
    """n stacked k x k convolutions against the one kernel that sees as much."""
    _odd("kernel", kernel)
    shape = (1, channels, size, size)
    stack = _variant(f"{layers} x {kernel}x{kernel}", lessons.stack(channels, channels, [kernel] * layers), shape)
    side = stack.receptive_field
    single = _variant(f"1 x {side}x{side}", lessons.stack(channels, channels, [side]), shape)
    return StackLesson(kernel=kernel, layers=layers, channels=channels, size=size, stack=stack, single=single,
                       weights_ratio=_ratio(single.weights, stack.weights), macs_ratio=_ratio(single.macs, stack.macs))


class FactorisedLesson(BaseModel):
    n: int
    channels: int
    filters: int
    size: int
    variants: list[Variant]   # n x n first; then the 3x3 stack and 1 x n + n x 1


def factorised_data(n: int, channels: int, filters: int, size: int) -> FactorisedLesson:
    _odd("n", n)
    if n < 3:
        raise InvalidParameter(f"n must be at least 3 to factorise; got {n}.")
    shape = (1, channels, size, size)
    variants = [_variant(f"{n}x{n}", lessons.stack(channels, filters, [n]), shape)]
    variants.append(_variant(f"{(n - 1) // 2} x 3x3", lessons.stack(channels, filters, [3] * ((n - 1) // 2)), shape))
    variants.append(_variant(f"1x{n} then {n}x1", lessons.stack(channels, filters, [(1, n), (n, 1)]), shape))
    return FactorisedLesson(n=n, channels=channels, filters=filters, size=size, variants=variants)


class SeparableLesson(BaseModel):
    naming: str
    in_channels: int   # N
    out_channels: int  # M
    kernel: int        # K
    size: int
    standard: Variant
    separable: Variant
    weights_ratio: float  # separable / standard = 1/M + 1/K^2
    macs_ratio: float


SEPARABLE_NAMING = ("N input channels, M output channels (filters), K x K kernels: standard N*K*K*M weights, "
                    "depthwise separable N*(K*K + M). The MobileNet paper swaps the letters (M in, N out).")


def separable_data(in_channels: int, out_channels: int, kernel: int, size: int) -> SeparableLesson:
    _odd("kernel", kernel)
    shape = (1, in_channels, size, size)
    standard = _variant(f"standard {kernel}x{kernel}", lessons.stack(in_channels, out_channels, [kernel]), shape)
    separable = _variant("depthwise + pointwise", lessons.separable(in_channels, out_channels, kernel), shape)
    return SeparableLesson(naming=SEPARABLE_NAMING, in_channels=in_channels, out_channels=out_channels,
                           kernel=kernel, size=size, standard=standard, separable=separable,
                           weights_ratio=_ratio(separable.weights, standard.weights),
                           macs_ratio=_ratio(separable.macs, standard.macs))


# ------------------------------------------------------------ MobileNet grid


class GridCell(BaseModel):
    multiplier: float
    resolution: int
    params: int
    macs: int


class MobileNetGrid(BaseModel):
    model: str
    multipliers: list[float]
    resolutions: list[int]
    cells: list[GridCell]
    figure: dict[str, Any]


def mobilenet_data() -> MobileNetGrid:
    cells = [GridCell(multiplier=m, resolution=r, params=p, macs=c) for m, r, p, c in lessons.mobilenet_v1_grid()]
    return MobileNetGrid(model="mobilenet_v1", multipliers=list(lessons.MOBILENET_MULTIPLIERS),
                         resolutions=list(lessons.MOBILENET_RESOLUTIONS), cells=cells,
                         figure=mobilenet_figure([c.model_dump() for c in cells]))


# ------------------------------------------------------------------ presets


class Preset(BaseModel):
    name: str
    params: dict[str, int | bool | str]


# Inception modules the course quotes figures for (checked on /lab/numbers).
BOTTLENECK_480 = dict(height=14, width=14, channels=480, c1=0, c3r=0, c3=0, c5r=16, c5=48, pool_proj=0, pool=False)
BOTTLENECK_192 = dict(height=28, width=28, channels=192, c1=0, c3r=0, c3=0, c5r=16, c5=32, pool_proj=0, pool=False)
CS231N_MODULE = dict(height=28, width=28, channels=256, c1=128, c3r=64, c3=192, c5r=64, c5=96, pool_proj=64, pool=True)


def inception_presets() -> list[Preset]:
    """GoogLeNet's inception (3a), read from the architecture, CURRICULUM.md's two bottleneck examples, and
    the CS231n-style deck's module."""
    return [
        Preset(name="GoogLeNet inception (3a)", params={**lessons.googlenet_inception("inception3a"), "pool": True}),
        Preset(name="480 -> 48 5x5 on 14x14, 16-filter reduction", params=BOTTLENECK_480),
        Preset(name="192 -> 32 5x5 on 28x28, 16-filter reduction", params=BOTTLENECK_192),
        Preset(name="CS231n-style module on 28x28x256, 64-filter reductions", params=CS231N_MODULE),
    ]


OUTPUT_SIZE_PRESETS = [
    Preset(name="AlexNet CONV1", params=dict(op="conv", size=227, kernel=11, padding=0, stride=4, dilation=1,
                                             ceil_mode=False)),
    Preset(name="GoogLeNet's pool, ceil_mode", params=dict(op="maxpool", size=112, kernel=3, padding=0, stride=2,
                                                          dilation=1, ceil_mode=True)),
    Preset(name="ceil_mode's rule", params=dict(op="maxpool", size=5, kernel=2, padding=1, stride=2, dilation=1,
                                                ceil_mode=True)),
    Preset(name="Dilated 3x3", params=dict(op="conv", size=28, kernel=3, padding=2, stride=1, dilation=2,
                                           ceil_mode=False)),
]
