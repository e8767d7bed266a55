"""Each model's own preprocessing: the resize, centre crop, resolution and
normalisation its weights were trained with, as one small value applied to a
decoded RGB PIL image. LeNet-5's is models/digits.py's DigitPreprocessing
(find the digit, crop, centre, scale as its training digits were).

torchvision models take them from their weights' ``transforms()``; timm
models (the packaged EfficientNet-Lite0 among them) from timm's pretrained
config: shorter side to floor(crop / crop_pct), centre crop, mean/std.

EfficientNet-Lite0's packaged weights: timm's ``tf_efficientnet_lite0``
config (bicubic, crop_pct 0.875 -> resize 256, crop 224, mean = std = 0.5,
i.e. TF's (x - 127) / 128) was checked against the alternatives on the real
photos in skimage/data (chelsea, coffee, rocket, astronaut, motorcycle_left)
and matplotlib's grace_hopper.jpg, scoring the mean log-probability of the
right class set on the five with an obvious label (tests/unit/test_weights.py
keeps the decisive check):
- normalisation: the stem's BatchNorm remembers the statistics its input had
  in training. With mean = std = 0.5 the conv_stem outputs on these photos sit
  0.26 running-std from the BN's running mean and their variance within
  exp(0.28) of its running variance; with ImageNet mean/std, 0.44 and
  exp(1.29) (3.6x too much variance). Mean log-probability of the right class
  set: -0.54 (0.5) vs -0.61 (ImageNet, bicubic).
- padding: the same weights in timm's symmetric-padding ``efficientnet_lite0``
  score -0.77 against -0.54 for TF "SAME" padding: the weights are a TF port.
- interpolation: bicubic -0.54 vs bilinear -0.55, and bicubic matches the
  stem's variance better (0.28 vs 0.35); both put a right class top-1 on 4 of
  the 5 (for Grace Hopper, "academic gown" wins; "military uniform" is top-5).
- crop: crop_pct 1.0 scored higher on these tightly framed photos (-0.33),
  but 0.875 is the protocol of the published accuracy (TF's eval crops with 32
  pixels of padding: 224 / 256), so it stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import torch
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

from models.catalog import ModelEntry
from models.digits import DigitPreprocessing


@dataclass(frozen=True)
class Preprocessing:
    resize: int  # shorter side, before the centre crop
    crop: int  # square side fed to the net
    interpolation: str  # "bilinear" | "bicubic"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.crop, self.crop)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """An RGB PIL image -> a normalised float tensor (3, crop, crop)."""
        image = F.resize(image, [self.resize], interpolation=InterpolationMode(self.interpolation))
        image = F.center_crop(image, [self.crop])
        tensor = F.pil_to_tensor(image).float().div_(255)
        return F.normalize(tensor, list(self.mean), list(self.std), inplace=True)

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """Where the net's input crop lies in a ``width`` x ``height`` image, in
        its pixels: (x, y, w, h). Follows torchvision's arithmetic: the shorter
        side resized to ``resize`` (the longer to int(resize * long / short)),
        then a centre crop whose top-left is round((side - crop) / 2)."""
        if width <= height:
            new_w, new_h = self.resize, int(self.resize * height / width)
        else:
            new_w, new_h = int(self.resize * width / height), self.resize
        left, top = int(round((new_w - self.crop) / 2.0)), int(round((new_h - self.crop) / 2.0))
        sx, sy = width / new_w, height / new_h
        return left * sx, top * sy, self.crop * sx, self.crop * sy


@cache
def preprocessing_for(entry: ModelEntry) -> Preprocessing | DigitPreprocessing:
    """The callable that turns a decoded RGB image into the model's input
    tensor (``input_shape``). Raises ValueError for a model without weights."""
    if entry.id == "lenet5":
        return DigitPreprocessing()
    if entry.tv_weights is not None:
        t = entry.tv_weights.transforms()
        return Preprocessing(resize=t.resize_size[0], crop=t.crop_size[0], interpolation=t.interpolation.value,
                             mean=tuple(t.mean), std=tuple(t.std))
    if entry.timm_name is not None:
        import timm

        cfg = timm.models.get_pretrained_cfg(entry.timm_name)
        crop = cfg.input_size[-1]
        return Preprocessing(resize=math.floor(crop / cfg.crop_pct), crop=crop, interpolation=cfg.interpolation,
                             mean=tuple(cfg.mean), std=tuple(cfg.std))
    raise ValueError(f"{entry.id} has no published weights, hence no preprocessing of its own")
