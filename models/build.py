"""Building a catalog entry's architecture without weights: on the meta device
for analysis, or as uninitialised storage on a real device for timing and for
loading weights into."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from models.meta import MetaMemo, no_gc
from models.catalog import ModelEntry
from models.timm_zoo import reparameterise


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
            with torch.device("meta"), MetaMemo():
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
