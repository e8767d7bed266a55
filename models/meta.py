"""Fast shape propagation on the meta device.

Ops without a C++ meta kernel (batch norm, hardtanh_, the in-place
initialisers ...) run Python decompositions that cost milliseconds each on
meta, more than the real op on a CPU. Three shortcuts, none of which changes
a shape (tests compare against real CPU forwards):
- in-place ops return their argument (on meta they only check shapes, and
  those checks are made here);
- batch norm and cat get direct shape rules;
- any other op's output metadata is remembered per (op, input metadata),
  since shapes repeat within a net and across nets.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


@cache
def _output_kind(func) -> str | None:
    """'fresh' for ops whose outputs are new tensors, 'inplace' for ops that
    write their first argument and return it; None for views and the rest."""
    schema = func._schema
    returns, arguments = schema.returns, schema.arguments
    writes = [a for a in arguments if a.alias_info and a.alias_info.is_write]
    if not writes and not any(r.alias_info for r in returns):
        return "fresh"
    if (len(returns) == 1 and writes == arguments[:1] and returns[0].alias_info
            and returns[0].alias_info.is_write):
        return "inplace"
    return None


# (op, input metadata) -> output metadata, for fresh-output ops on meta tensors.
# Ops without a C++ meta kernel (batch norm, hardswish ...) run Python
# decompositions that cost milliseconds; shapes repeat within and across nets.
_META_OUTPUTS: dict[tuple, tuple] = {}
_MEMO_LIMIT = 50_000


_CONTAINERS = (tuple, list, dict)


def flat_leaves(obj: Any, out: list) -> list:
    """Leaves of nested tuples/lists/dicts: aten arguments are shallow, and
    torch's general pytree costs more than the op on meta."""
    if isinstance(obj, _CONTAINERS):
        for item in (obj.values() if isinstance(obj, dict) else obj):
            if isinstance(item, _CONTAINERS):
                flat_leaves(item, out)
            else:  # most items are leaves: no call for them
                out.append(item)
    else:
        out.append(obj)
    return out


def _leaf_key(leaf: Any) -> Any:
    if isinstance(leaf, torch.Tensor):
        return (tuple(leaf.shape), leaf.stride(), leaf.dtype)
    return leaf if isinstance(leaf, (int, float, bool, str, type(None), torch.dtype, torch.device)) else repr(leaf)


# In-place ops that change their argument's shape or strides: never skipped.
_RESHAPING_INPLACE = {
    "resize_", "resize_as_", "set_", "as_strided_", "squeeze_", "unsqueeze_", "t_", "transpose_",
    "swapdims_", "swapaxes_", "_resize_output_",
}
aten = torch.ops.aten


def _inplace_on_meta(func, args, leaves: list):
    """An in-place op on a meta tensor changes nothing but metadata, and the
    ones below cannot change that: answer with the argument itself, after
    checking what the real kernel would refuse (shapes that don't broadcast
    onto it, a float written into an integer tensor)."""
    target = args[0]
    if func._overloadpacket.__name__ in _RESHAPING_INPLACE or not isinstance(target, torch.Tensor):
        return None
    for t in leaves[1:]:
        if isinstance(t, torch.Tensor):
            if t.dtype.is_floating_point and not target.dtype.is_floating_point:
                return None
            try:
                if torch.broadcast_shapes(target.shape, t.shape) != target.shape:
                    return None
            except RuntimeError:
                return None
    return target


def _batch_norm_on_meta(args, kwargs):
    x, weight = args[0], args[1]
    if (x.dtype != torch.float32 or x.dim() < 2 or not x.is_contiguous()
            or (weight is not None and tuple(weight.shape) != (x.shape[1],))):
        return None
    channels = (x.shape[1],)
    # torch.empty, not empty_like: on meta, empty_like runs Python stride logic (torch._prims_common).
    return (torch.empty(x.shape, device="meta"), torch.empty(channels, device="meta"),
            torch.empty(channels, device="meta"))


def _convolution_on_meta(args, kwargs):
    """A plain (not transposed) 1-d/2-d/3-d convolution of a batched input:
    the output side is floor((n + 2p - d (k - 1) - 1) / s) + 1 (torch's
    ``calc_conv_nd_return_shape``), contiguous as torch's ``meta_conv`` makes
    it from contiguous operands (others go to it). Anything it does not check (a channel or bias mismatch, an empty
    output) goes to the real kernel, which raises the real error."""
    if len(args) != 9 or kwargs:
        return None
    x, weight, bias, stride, padding, dilation, transposed, _, groups = args
    spatial = weight.dim() - 2
    if (transposed or x.dim() != weight.dim() or spatial < 1 or x.dtype != weight.dtype or groups < 1
            or x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups
            or (bias is not None and tuple(bias.shape) != (weight.shape[0],))
            or not (x.is_contiguous() and weight.is_contiguous())):  # channels_last: meta_conv keeps that layout
        return None
    shape = [x.shape[0], weight.shape[0]]
    for i in range(spatial):
        s, p, d = (v[i] if len(v) > 1 else v[0] for v in (stride, padding, dilation))
        side = (x.shape[2 + i] + 2 * p - d * (weight.shape[2 + i] - 1) - 1) // s + 1
        if side < 1:
            return None
        shape.append(side)
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _cat_on_meta(args, kwargs):
    tensors = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    first = tensors[0]
    if not all(t.dtype == first.dtype and t.dim() == first.dim() and t.dim() > 0 and t.is_contiguous()
               for t in tensors):
        return None
    dim %= first.dim()
    if any(t.shape[:dim] != first.shape[:dim] or t.shape[dim + 1:] != first.shape[dim + 1:] for t in tensors):
        return None
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return torch.empty(shape, dtype=first.dtype, device="meta")


def _same_shape_elementwise_on_meta(args, kwargs):
    """add/mul/sub of two contiguous tensors of one shape and dtype: no
    broadcasting and no type promotion, so the output is one more of them
    (torch's reference runs its type-promotion wrapper in Python)."""
    if len(args) < 2:
        return None
    a, b = args[0], args[1]
    if (not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype
            or not (a.is_contiguous() and b.is_contiguous())):
        return None
    return torch.empty(a.shape, dtype=a.dtype, device="meta")


def _mean_on_meta(args, kwargs):
    """mean over some dims of a contiguous float tensor (global average pooling)."""
    x, dims = args[0], args[1] if len(args) > 1 else None
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if (not dims or len(args) > 3 or set(kwargs) - {"keepdim"} or not x.dtype.is_floating_point
            or not x.is_contiguous() or x.dim() == 0):
        return None
    reduced = {d % x.dim() for d in dims}
    shape = [1 if i in reduced else n for i, n in enumerate(x.shape) if keepdim or i not in reduced]
    return torch.empty(shape, dtype=x.dtype, device="meta")


# Shape rules for fresh-output ops whose meta kernels are slow Python
# decompositions; None from a rule means "ask the real kernel".
_FAST_RULES = {aten.native_batch_norm.default: _batch_norm_on_meta, aten.cat.default: _cat_on_meta,
               aten.convolution.default: _convolution_on_meta, aten.mean.dim: _mean_on_meta,
               aten.add.Tensor: _same_shape_elementwise_on_meta, aten.mul.Tensor: _same_shape_elementwise_on_meta,
               aten.sub.Tensor: _same_shape_elementwise_on_meta}


def run_memoised(func, args, kwargs, leaves: list):
    kind = _output_kind(func)
    tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
    # Factory ops (no tensor in) have fast C++ meta kernels; real tensors run for real.
    if kind is None or not tensors or not all(t.is_meta for t in tensors):
        return func(*args, **kwargs)
    if kind == "inplace":
        target = _inplace_on_meta(func, args, leaves)
        return func(*args, **kwargs) if target is None else target
    key = (func, len(leaves), tuple(kwargs), *map(_leaf_key, leaves))
    cached = _META_OUTPUTS.get(key)
    if cached is None:
        rule = _FAST_RULES.get(func)
        out = rule(args, kwargs) if rule is not None else None
        if out is None:
            out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            metas = out.shape, out.stride(), out.dtype
        elif isinstance(out, tuple) and all(isinstance(t, torch.Tensor) for t in out):
            metas = [(t.shape, t.stride(), t.dtype) for t in out]
        else:
            return out
        if len(_META_OUTPUTS) < _MEMO_LIMIT:
            _META_OUTPUTS[key] = metas
        return out
    if isinstance(cached, tuple):
        return torch.empty_strided(cached[0], cached[1], dtype=cached[2], device="meta")
    return tuple(torch.empty_strided(m[0], m[1], dtype=m[2], device="meta") for m in cached)


class FastDispatchMode(TorchDispatchMode):
    """A dispatch mode without torch's per-op Dynamo guard: by default torch
    wraps ``__torch_dispatch__`` in ``torch._disable_dynamo`` (a few
    microseconds an op, thousands of ops a build); nothing is compiled
    inside a meta trace. The opt-out is the one torch's own docstring of
    ``_should_skip_dynamo`` shows."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


class MetaMemo(FastDispatchMode):
    """Runs aten ops on meta tensors the fast way (see ``run_memoised``).

    Also used while building a model on meta, where it turns the in-place
    initialisers (normal_, uniform_ ...) into no-ops."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        return run_memoised(func, args, kwargs, flat_leaves(kwargs, flat_leaves(args, [])))


# torch.export and the ONNX exporter switch on process-wide FX state
# (torch.fx.traceback's node-meta preservation) that decompositions running in
# another thread then read and write: a meta trace interleaved with an export
# fails (KeyError 'custom', "module is not installed as a submodule"). Both
# hold this lock; analyses are GIL-bound Python anyway, so it costs them nothing.
TORCH_TRACING = threading.RLock()


@contextmanager
def no_gc() -> Iterator[None]:
    """Tracing allocates many short-lived objects; a gen-2 collection in the
    middle costs more than the trace."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
