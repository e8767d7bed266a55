"""Each model's own preprocessing: the resize, centre crop, resolution and
normalisation its weights were trained with, as one small value applied to a
decoded RGB PIL image.

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

import numpy as np
import torch
from PIL import Image

from models.catalog import ModelEntry
from models.digits import DigitPreprocessing


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize``, centre-crop ``crop`` x ``crop``,
    scale to [0, 1], normalise with mean/std (torchvision's and timm's eval
    transform), done as ONE resampling of the crop's source box: the cost
    depends on the crop, never on the upload's shape. (Resizing the shorter
    side first, as the two-step transform does, turns a 4000x1 strip into a
    1,024,000x256 image: a gigabyte and seconds for 100 bytes of PNG.) Pillow
    resamples the box's fractional edges with its antialiasing filter, the
    continuous form of resize-then-crop (which snaps the crop to whole
    pixels); on the example photos the two differ by at most 0.06 normalised
    units on average and give the same top-5 (tests/unit/test_images.py)."""

    resize: int  # shorter side, before the centre crop
    crop: int  # square side fed to the net
    interpolation: str  # "bilinear" | "bicubic"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.crop, self.crop)

    def source_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) in the image's pixels of the region the
        centre crop shows: a square of side crop / scale, scale = resize / shorter side."""
        side = min(width, height) * min(1.0, self.crop / self.resize)
        left, top = (width - side) / 2, (height - side) / 2
        return left, top, left + side, top + side

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The same region as (x, y, width, height): where the net's input crop
        lies in the image, in its pixels (for heatmaps drawn over the photo)."""
        left, top, right, bottom = self.source_box(width, height)
        return left, top, right - left, bottom - top

    def input_picture(self, image: Image.Image) -> Image.Image:
        """The net's input as an RGB picture (crop x crop pixels), before normalisation."""
        return image.resize((self.crop, self.crop), _PIL_RESAMPLING[self.interpolation],
                            box=self.source_box(*image.size))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """An RGB PIL image -> a normalised float32 tensor (3, crop, crop), contiguous."""
        image = self.input_picture(image)
        chw = np.asarray(image).transpose(2, 0, 1).astype(np.float32, order="C")
        chw -= np.asarray(self.mean, np.float32)[:, None, None] * 255
        chw *= 1 / (np.asarray(self.std, np.float32)[:, None, None] * 255)
        return torch.from_numpy(chw)


_PIL_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                   "nearest": Image.Resampling.NEAREST}


@cache
def preprocessing_for(entry: ModelEntry) -> Preprocessing | DigitPreprocessing:
    """The callable that turns a decoded RGB image into the model's input
    tensor (``input_shape``); its ``resize`` bounds the decoded image's size.
    Raises ValueError for a model without weights."""
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
