"""Multiply-adds as fvcore counts them, op by op, beside ConvZoo's own count.

timm's benchmark table counts GMACs with fvcore's ``FlopCountAnalysis``,
which reads a ``torch.jit`` trace: it sees top-level ops (``aten::linear``,
``aten::batch_norm``, ``aten::scaled_dot_product_attention``) and counts
only those it has a handle for (fvcore/nn/flop_count.py,
``_DEFAULT_SUPPORTED_OPS``, and fvcore/nn/jit_handles.py). ConvZoo counts
aten ops after decomposition with torch's own formulas
(torch.utils.flop_counter). Here one forward pass is watched at both levels:
a TorchFunctionMode names the top-level op each aten op belongs to, a
TorchDispatchMode counts ConvZoo's MACs per aten op, and fvcore's rule for
the top-level op gives its count. Per op:

- counted by both, the same way: convolutions, ``linear``, ``matmul``,
  ``mm``, ``bmm``, ``addmm`` (fvcore's figure is ConvZoo's);
- counted by fvcore only: normalisation (batch norm 1 or 2 per element in
  eval, layer/group/instance norm 4 or 5), ``upsample_nearest2d`` (1 per
  output element), ``upsample_bilinear2d`` and ``grid_sampler`` (4),
  ``adaptive_avg_pool2d`` (1 per input element);
- counted by ConvZoo only: ``baddbmm`` and recurrent layers (``aten::lstm``,
  ``aten::gru``, ``aten::rnn_*``: fvcore has no handle; ConvZoo counts the
  matmuls they decompose into), and
  convolutions given ``padding='same'`` as a string (the trace records them
  as ``aten::conv2d``, not the ``aten::_convolution`` fvcore handles);
- ``scaled_dot_product_attention``: fvcore has no handle for it, yet every
  row of timm's table with attention agrees only when it is counted (as
  ConvZoo counts it), so the table's traces saw its matmuls: counted by both;
- ``einsum``: fvcore's own rule (two equations by formula, the rest from
  numpy's ``einsum_path``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from models.meta import MetaMemo, flat_leaves, no_gc

_SAME = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "convolution",
         "linear", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "scaled_dot_product_attention"}
_FVCORE_MISSES = {"baddbmm"}
_CONVS = {"conv1d", "conv2d", "conv3d"}
# Inside a top-level op fvcore has no rule for (a Python composite such as
# multi_head_attention_forward), the jit trace shows these aten ops, counted as ConvZoo does.
_INNER_SAME = {"convolution", "mm", "addmm", "bmm"}


def _numel(t) -> int:
    return math.prod(t.shape) if isinstance(t, torch.Tensor) else 0


def _arg(args, kwargs, index: int, name: str):
    return args[index] if len(args) > index else kwargs.get(name)


def _einsum_macs(args) -> int:
    """fvcore's einsum_flop_jit."""
    import numpy as np

    equation, operands = args[0], args[1:]
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    equation = equation.replace(" ", "")
    letters = dict.fromkeys(c for c in equation if c.isalpha())
    equation = equation.translate({ord(c): 97 + i for i, c in enumerate(letters)})
    shapes = [list(t.shape) for t in operands]
    if equation == "abc,abd->acd":
        n, c, t = shapes[0]
        return n * c * t * shapes[-1][-1]
    if equation == "abc,adc->adb":
        n, t, g = shapes[0]
        return n * t * g * shapes[-1][1]
    path = np.einsum_path(equation, *[np.zeros(s) for s in shapes], optimize="optimal")[1]
    for line in path.split("\n"):
        if "optimized flop" in line.lower():
            return int(np.floor(float(line.split(":")[-1]) / 2))
    raise NotImplementedError(f"einsum {equation}")


def fvcore_rule(name: str, args, kwargs, out) -> int | None:
    """fvcore's MACs for a top-level op it has a rule for that ConvZoo counts
    differently (None: not one of those)."""
    if name == "batch_norm":
        training = _arg(args, kwargs, 5, "training")
        affine = _arg(args, kwargs, 3, "weight") is not None
        return _numel(args[0]) * ((5 if affine else 4) if training else (2 if affine else 1))
    if name in ("layer_norm", "group_norm", "instance_norm"):
        index, key = {"layer_norm": (2, "weight"), "group_norm": (2, "weight"), "instance_norm": (3, "weight")}[name]
        return _numel(args[0]) * (5 if _arg(args, kwargs, index, key) is not None else 4)
    if name in ("interpolate", "upsample"):
        mode = _arg(args, kwargs, 3, "mode") or "nearest"
        if args[0].dim() != 4:
            return 0
        return _numel(out) * {"nearest": 1, "bilinear": 4}.get(mode, 0)
    if name == "adaptive_avg_pool2d":
        return _numel(args[0])
    if name == "grid_sample":
        return _numel(out) * 4
    if name == "einsum":
        return _einsum_macs(args)
    return None


@dataclass
class OpCount:
    calls: int = 0
    convzoo_macs: int = 0
    fvcore_macs: int = 0


@dataclass
class PerOp:
    """MACs per top-level op, as ConvZoo and as fvcore count them."""
    ops: dict[str, OpCount] = field(default_factory=lambda: defaultdict(OpCount))

    @property
    def convzoo_total(self) -> int:
        return sum(c.convzoo_macs for c in self.ops.values())

    @property
    def fvcore_total(self) -> int:
        return sum(c.fvcore_macs for c in self.ops.values())


class _TopLevel(TorchFunctionMode):
    """Names the top-level torch function now running (inner calls are not
    seen: the mode is off inside its own handler)."""

    def __init__(self, counter: _Counter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name == "__get__" or self.counter.recurrent:  # attribute reads (x.shape ...); inside an RNN
            return func(*args, **kwargs)
        if name in _CONVS and isinstance(_arg(args, kwargs, 4, "padding"), str):
            name = f"{name} (padding='same')"
        self.counter.current = name
        self.counter.inner = defaultdict(int)
        try:
            out = func(*args, **kwargs)
        finally:
            self.counter.current = None
        inner = self.counter.inner
        convzoo = sum(inner.values())
        if convzoo == 0 and name not in ("batch_norm", "layer_norm", "group_norm", "instance_norm", "interpolate",
                                         "upsample", "adaptive_avg_pool2d", "grid_sample", "einsum"):
            return out
        rule = fvcore_rule(name, args, kwargs, out)
        if rule is not None:
            fvcore = rule
        elif name in _SAME:
            fvcore = convzoo
        elif name in _FVCORE_MISSES or name.endswith("(padding='same')"):
            fvcore = 0
        else:
            fvcore = sum(macs for op, macs in inner.items() if op in _INNER_SAME)
        if convzoo or fvcore:
            count = self.counter.per_op.ops[name]
            count.calls += 1
            count.convzoo_macs += convzoo
            count.fvcore_macs += fvcore
        return out


class _Counter(TorchDispatchMode):
    """ConvZoo's count (torch's flop formulas, 2 FLOPs per MAC) per aten op,
    into the bucket of the top-level op running."""

    def __init__(self) -> None:
        super().__init__()
        self.per_op = PerOp()
        self.current: str | None = None
        self.inner: dict[str, int] = defaultdict(int)
        self.recurrent = False  # inside an nn.LSTM/GRU/RNN: its hooks own the count

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            macs = formula(*args, **kwargs, out_val=out) // 2
            if self.current is None:  # an aten op called directly (no torch function above it)
                count = self.per_op.ops[func._overloadpacket.__name__]
                count.calls += 1
                count.convzoo_macs += macs
                count.fvcore_macs += macs if func._overloadpacket.__name__ in _INNER_SAME else 0
            else:
                self.inner[func._overloadpacket.__name__] += macs
        return out


def _recurrent_hooks(model: torch.nn.Module, counter: _Counter) -> list:
    """nn.LSTM/GRU/RNN call their aten op through ``_VF``, which no torch
    function mode sees: their modules name the op instead."""
    handles = []
    for module in model.modules():
        if isinstance(module, torch.nn.RNNBase):
            name = f"{module.mode.lower()} (recurrent)"

            def pre(mod, args, name=name):
                counter.current, counter.inner, counter.recurrent = name, defaultdict(int), True

            def post(mod, args, out, name=name):
                convzoo = sum(counter.inner.values())
                count = counter.per_op.ops[name]
                count.calls += 1
                count.convzoo_macs += convzoo  # fvcore: no handle for aten::lstm / gru / rnn
                counter.current, counter.recurrent = None, False

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    return handles


def count_per_op(model: torch.nn.Module, input_shape: tuple[int, ...]) -> PerOp:
    """One forward pass of ``model`` (on meta) with MACs per top-level op, as
    ConvZoo and as fvcore count them."""
    counter = _Counter()
    x = torch.empty(input_shape, device="meta")
    handles = _recurrent_hooks(model, counter)
    try:
        with no_gc(), torch.no_grad(), MetaMemo(), counter, _TopLevel(counter):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return counter.per_op


__all__ = ["OpCount", "PerOp", "count_per_op", "fvcore_rule", "flat_leaves"]
