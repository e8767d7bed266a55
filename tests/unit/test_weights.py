"""Weights: the packaged EfficientNet-Lite0 loads strictly onto timm's
architecture with the preprocessing it was trained with; torchvision
checkpoints load from torch's cache; fetching fails plainly offline."""

from __future__ import annotations

import pytest
import torch
import torchvision
from PIL import Image

from models.build import build_empty
from models.preprocess import Preprocessing, preprocessing_for
from models.registry import get_entry
from models.weights import (WeightsError, categories, fetch_weights, load_pretrained, packaged_weights_path,
                            torchvision_checkpoint_path, weights_status)

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "motorcycle", "grace_hopper")


@pytest.fixture(scope="module")
def lite0():
    return load_pretrained(get_entry("efficientnet_lite0"), "cpu")


def test_packaged_weights_load_strictly_and_completely(lite0):
    source = torch.load(packaged_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    target = lite0.state_dict()
    assert len(source) == len(target) == 296
    assert torch.equal(target["classifier.weight"], source["_fc.weight"])
    assert torch.equal(target["blocks.0.0.conv_pw.weight"], source["_blocks.0._project_conv.weight"])
    assert torch.equal(target["blocks.6.0.bn3.running_var"], source["_blocks.15._bn2.running_var"])
    assert not lite0.training


def _stem_mismatch(model, batch: torch.Tensor) -> float:
    """How far the stem's output statistics sit from those its BatchNorm
    learned in training (mean |log variance ratio| over channels)."""
    seen = {}
    hook = model.conv_stem.register_forward_hook(lambda m, i, o: seen.update(out=o))
    with torch.inference_mode():
        model(batch)
    hook.remove()
    bn = model.bn1
    return ((seen["out"].var((0, 2, 3)) + bn.eps) / (bn.running_var + bn.eps)).log().abs().mean().item()


def test_lite0_preprocessing_is_the_one_its_weights_were_trained_with(lite0, photos):
    """mean = std = 0.5 (TF's (x - 127) / 128) fits the stem's BatchNorm
    statistics far better than ImageNet's mean/std; see models/preprocess.py."""
    ours = preprocessing_for(get_entry("efficientnet_lite0"))
    assert ours == Preprocessing(resize=256, crop=224, interpolation="bicubic", mean=(0.5,) * 3, std=(0.5,) * 3)
    imagenet = Preprocessing(256, 224, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    images = [Image.open(photos[name]).convert("RGB") for name in PHOTOS]
    ours_gap = _stem_mismatch(lite0, torch.stack([ours(im) for im in images]))
    imagenet_gap = _stem_mismatch(lite0, torch.stack([imagenet(im) for im in images]))
    assert ours_gap < 0.4 < 1.0 < imagenet_gap


@pytest.mark.parametrize("model_id, params, crop, resize, top1", [
    ("efficientnet_lite1", 5_416_680, 240, 272, 76.7),  # TF README: 5.4M params, 240x240
    ("efficientnet_lite2", 6_092_072, 260, 292, 77.6),  # TF README: 6.1M params, 260x260
])
def test_packaged_lite1_and_lite2_load_strictly_and_read_the_cat(photos, model_id, params, crop, resize, top1):
    entry = get_entry(model_id)
    assert entry.input_size == (3, crop, crop) and entry.top1 == top1 and "EfficientNet-Lite" in entry.citation
    assert weights_status(entry).available
    model = load_pretrained(entry, "cpu")
    source = torch.load(packaged_weights_path(model_id), map_location="cpu", weights_only=True)
    assert len(source) == len(model.state_dict()) == 386
    assert sum(p.numel() for p in model.parameters()) == params
    prepare = preprocessing_for(entry)
    assert prepare == Preprocessing(resize=resize, crop=crop, interpolation="bicubic", mean=(0.5,) * 3, std=(0.5,) * 3)
    with torch.inference_mode():
        top1_index = model(prepare(Image.open(photos["chelsea"]).convert("RGB"))[None]).argmax().item()
    assert categories(entry)[top1_index] in {"Egyptian cat", "tabby", "tiger cat"}


@pytest.mark.parametrize("model_id", ["resnet50", "inception_v3", "efficientnet_b3", "vit_h_14"])
def test_torchvision_preprocessing_matches_the_weights_transforms(photos, model_id):
    """The weights' own transform, parameter for parameter; done as one resampling of the crop's source box
    (bounded cost), the tensor stays close to resize-then-crop, which snaps the crop to whole pixels
    (tests/unit/test_images.py checks that the top-5 does not change)."""
    entry = get_entry(model_id)
    transforms = entry.tv_weights.transforms()
    pre = preprocessing_for(entry)
    assert (pre.resize, pre.crop, pre.interpolation, pre.mean, pre.std) == (
        transforms.resize_size[0], transforms.crop_size[0], transforms.interpolation.value,
        tuple(transforms.mean), tuple(transforms.std))
    image = Image.open(photos["chelsea"]).convert("RGB")
    ours, reference = pre(image), transforms(image)
    assert ours.shape == reference.shape
    assert (ours - reference).abs().mean() < 0.08   # measured on chelsea: inception_v3 (342 -> 299) 0.076


def _write_checkpoint(entry, state_dict) -> None:
    path = torchvision_checkpoint_path(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, path)


def test_torchvision_weights_load_from_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = get_entry("mobilenet_v3_small")
    assert weights_status(entry).status == "downloadable"
    with pytest.raises(WeightsError, match="convzoo weights fetch mobilenet_v3_small"):
        load_pretrained(entry, "cpu")
    reference = torchvision.models.mobilenet_v3_small().eval()
    _write_checkpoint(entry, reference.state_dict())
    assert weights_status(entry).status == "available"
    loaded = load_pretrained(entry, "cpu")
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(loaded(x), reference(x))


def test_densenet_checkpoint_keys_of_the_old_layout_load(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = get_entry("densenet121")
    state = build_empty(entry, "cpu").state_dict()
    # torchvision's published files: 'norm.1.weight', and no num_batches_tracked (older than the counter)
    old_style = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in state.items()
                 if not k.endswith("num_batches_tracked")}
    assert any(".norm.1.weight" in k for k in old_style)
    _write_checkpoint(entry, old_style)
    assert load_pretrained(entry, "cpu").state_dict().keys() == state.keys()


def test_googlenet_takes_the_input_transform_its_weights_expect(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = get_entry("googlenet")
    _write_checkpoint(entry, build_empty(entry, "cpu").state_dict())
    assert load_pretrained(entry, "cpu").transform_input is True


def test_fetch_fails_plainly_without_a_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = get_entry("squeezenet1_1")
    try:
        fetch_weights(entry, timeout_s=5)
    except WeightsError as exc:  # this machine: no route to download.pytorch.org
        message = str(exc)
        assert "squeezenet1_1-b8a52dc0.pth" in message and str(tmp_path) not in message  # no server paths
        assert not torchvision_checkpoint_path(entry).exists()
        assert not any(tmp_path.rglob("*.partial"))
    else:  # a machine with a network
        assert torchvision_checkpoint_path(entry).is_file() and weights_status(entry).status == "available"


def test_models_without_published_weights_say_why():
    with pytest.raises(WeightsError, match="from the paper"):
        fetch_weights(get_entry("nin"))
    with pytest.raises(WeightsError, match="Hugging Face hub"):
        load_pretrained(get_entry("inception_v4"), "cpu")


def test_cli_weights_fetch_says_why_it_cannot(capsys):
    from app.cli import main

    assert main(["weights", "fetch", "nin"]) == 1
    assert "no trained PyTorch weights" in capsys.readouterr().err


def test_timm_weights_in_the_hugging_face_cache_load_through_timms_loader(tmp_path, monkeypatch):
    """A file laid out as hf_hub_download leaves it (refs/main -> snapshot)
    makes a timm model available, and timm's loader puts exactly it in."""
    import timm
    from huggingface_hub import constants
    from safetensors.torch import save_file

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    entry = get_entry("mobilenet_v1")
    assert weights_status(entry).status == "downloadable"
    repo = timm.models.get_pretrained_cfg(entry.timm_name).hf_hub_id
    folder = tmp_path / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    torch.manual_seed(0)
    reference = timm.create_model(entry.timm_name).eval()
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(snapshot / "model.safetensors"))
    assert weights_status(entry).status == "available" and str(tmp_path) not in weights_status(entry).reason
    loaded = load_pretrained(entry, "cpu")
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(loaded(x), reference(x))
