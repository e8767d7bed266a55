"""Torchvision models exported to ONNX in the test run (random weights, the
TorchScript exporter: fast, and the weights inside the file)."""

from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import nn

from models.build import build_on_meta
from models.registry import get_entry


def export(module: nn.Module, input_size: tuple[int, ...], dynamo: bool = False, **kwargs) -> bytes:
    """The ONNX file's bytes, weights inside; ``dynamo``: torch.export's exporter instead of TorchScript's;
    ``kwargs`` for torch.onnx.export (input_names, dynamic_axes ...)."""
    args = (torch.randn(1, *input_size),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(module.eval(), args, dynamo=True, verbose=False).model_proto.SerializeToString()
        buffer = io.BytesIO()
        torch.onnx.export(module.eval(), args, buffer, dynamo=False, opset_version=17, **kwargs)
    return buffer.getvalue()


def distinct_weights(module: nn.Module) -> nn.Module:
    """Every weight and statistic random, so no two initialisers are equal
    (exporters share equal ones, which would then count once)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return module


def export_zoo_model(model_id: str) -> bytes:
    """The zoo entry's architecture as its builder makes it, with the builder's random initial weights."""
    entry = get_entry(model_id)
    torch.manual_seed(0)
    return export(entry.build(), entry.input_size)


def folded_batch_norm_channels(model_id: str, data: bytes) -> int:
    """Channels of the model's batch norms that the exporter folded into a
    convolution: those without a BatchNormalization node in the graph."""
    entry = get_entry(model_id)
    model = build_on_meta(entry)
    in_torch = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    graph = onnx.load_from_string(data).graph
    sizes = {t.name: t.dims[0] for t in graph.initializer if t.dims}
    for node in graph.node:  # the exporter shares equal initialisers through Identity nodes
        if node.op_type == "Identity" and node.input[0] in sizes:
            sizes[node.output[0]] = sizes[node.input[0]]
    in_graph = sum(sizes[n.input[1]] for n in graph.node if n.op_type == "BatchNormalization")
    return in_torch - in_graph


__all__ = ["export", "export_zoo_model", "folded_batch_norm_channels"]
