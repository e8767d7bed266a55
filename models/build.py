"""Building a catalog entry's architecture without weights: on the meta device
for analysis, or as uninitialised storage on a real device for timing and for
loading weights into."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils._device import DeviceContext

from models.meta import MetaMemo, no_gc
from models.catalog import ModelEntry
from models.timm_zoo import reparameterise


# Initialisers that only write values: on meta there are none to write.
_INITIALISERS = frozenset({
    nn.init.uniform_, nn.init.normal_, nn.init.trunc_normal_, nn.init.constant_, nn.init.ones_, nn.init.zeros_,
    nn.init.eye_, nn.init.dirac_, nn.init.xavier_uniform_, nn.init.xavier_normal_, nn.init.kaiming_uniform_,
    nn.init.kaiming_normal_, nn.init.orthogonal_, nn.init.sparse_,
    torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.fill_, torch.Tensor.zero_, torch.Tensor.random_,
    torch.Tensor.bernoulli_, torch.Tensor.exponential_, torch.Tensor.log_normal_, torch.Tensor.cauchy_,
    torch.Tensor.geometric_,
})


class _OnMetaWithoutInit(DeviceContext):
    """``torch.device("meta")`` that also answers the weight initialisers
    (``nn.init.*``, ``Tensor.uniform_`` ...) on a meta tensor with the tensor
    itself, before they reach the dispatcher: random init is most of the
    ops of a build (a conv's kaiming_uniform_ computes fans, bounds and two
    in-place draws), and on meta it writes nothing."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _INITIALISERS:
            target = args[0] if args else (kwargs or {}).get("tensor")  # nn.init hands its tensor over by name
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return super().__torch_function__(func, types, args, kwargs)


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Only parameters and buffers on meta (as accelerate's init_empty_weights):
    for builders that compute their layout with tensors (RegNet's width schedule
    calls .tolist(), which a meta tensor cannot answer)."""
    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def parameter_on_meta(module, name, param):
        register_parameter(module, name, param)
        if param is not None:
            module._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    def buffer_on_meta(module, name, buffer, persistent=True):
        register_buffer(module, name, buffer if buffer is None else buffer.to("meta"), persistent)

    nn.Module.register_parameter = parameter_on_meta
    nn.Module.register_buffer = buffer_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter
        nn.Module.register_buffer = register_buffer


def build_on_meta(entry: ModelEntry, resolution: int | None = None, reparameterised: bool = False) -> nn.Module:
    """The architecture with every tensor on meta: no memory, no random init.
    ``reparameterised``: the inference form of a re-parameterisable timm net
    (branches and norms fused by timm's own re-parameterisation)."""
    with no_gc(), torch.no_grad():
        try:
            with _OnMetaWithoutInit("meta"), MetaMemo():
                model = entry.build(resolution)
        except NotImplementedError:
            with _parameters_on_meta():
                model = entry.build(resolution)
        if reparameterised:
            with torch.device("meta"), MetaMemo():  # the fused kernels are computed on meta too
                model = reparameterise(model.eval())
    return model.eval()


def build_empty(entry: ModelEntry, device: str | torch.device, resolution: int | None = None) -> nn.Module:
    """The architecture in uninitialised memory on ``device``: real storage for
    timing or for loading a state dict, without paying for random init."""
    return build_on_meta(entry, resolution).to_empty(device=device).eval()
