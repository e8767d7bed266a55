"""Handwritten digits for LeNet-5: the training data, and any digit image
prepared the way the training digits were.

The training set is scikit-learn's bundled copy of the UCI "optdigits" test
set (``sklearn.datasets.load_digits``: 1,797 digits by 13 writers). Each was
made by NIST's form software as a 32x32 binary bitmap of the digit, scaled to
fill the frame's height (its width follows its aspect; the data's ink spans
all 8 rows of every digit), then counted in 4x4 blocks into an 8x8 image of
values 0..16 (the dataset's DESCR). ``digit_8x8`` repeats that recipe on any
image: find the ink (dark on light or light on dark, anywhere in the frame),
crop to it, scale its longer side to 32 keeping the aspect, centre it,
binarise, count in 4x4 blocks. ``lenet_input`` turns 8x8 digits into
LeNet-5's input: upsampled to 24x24 and padded to 32x32, as LeCun et al. 1998
centre a 20x20 (MNIST) digit in a 32x32 field so strokes reach the centres
of the top feature detectors' receptive fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

BITMAP = 32  # NIST's normalised bitmap side
BLOCK = 4  # its 4x4 counting blocks -> 8x8
DIGIT_SIDE = 24  # the 8x8 digit upsampled to this, inside LeNet's 32x32 field
INPUT_SIDE = 32
CLASSES = [str(d) for d in range(10)]
PREPARATION = ("Otsu's threshold finds the ink (dark on light or light on dark), the picture is cropped to it, its "
               "longer side scaled to 32 px and centred in a 32x32 bitmap, counted in 4x4 blocks to 8x8 "
               "(as the optdigits were made), then upsampled to 24x24 and padded to LeNet-5's 32x32.")
DATASET = "scikit-learn's handwritten digits (load_digits: the UCI optdigits test set, 8x8)"
# Components of the ink smaller than this share of the largest are specks, not strokes.
MIN_COMPONENT_SHARE = 0.05


class NoDigitError(ValueError):
    """The image has no ink to read: a blank or uniform picture."""


def load_digit_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images (1797, 8, 8) float32 in [0, 1] (ink = 1),
    labels (1797,) int64."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def lenet_input(digits: np.ndarray | torch.Tensor) -> torch.Tensor:
    """8x8 digits (N, 8, 8) in [0, 1], ink = 1 -> LeNet-5's input
    (N, 1, 32, 32): bilinear upsampling to 24x24, zero padding to 32x32,
    then scaled to [-1, 1] (background -1, full ink +1) for the tanh units."""
    x = torch.as_tensor(digits, dtype=torch.float32).unsqueeze(1)
    x = F.interpolate(x, size=(DIGIT_SIDE, DIGIT_SIDE), mode="bilinear", align_corners=False)
    pad = (INPUT_SIDE - DIGIT_SIDE) // 2
    x = F.pad(x, (pad, pad, pad, pad))
    return x.mul_(2).sub_(1)


def bitmap_image(digit: np.ndarray) -> Image.Image:
    """An 8x8 digit (8, 8) in [0, 1] back at its bitmap's 32x32 (bicubic), as
    a greyscale picture to prepare like any other."""
    grey = Image.fromarray(np.round(digit * 255).astype(np.uint8), "L")
    return grey.resize((BITMAP, BITMAP), Image.Resampling.BICUBIC)


def _ink_map(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey levels (H, W) in [0, 1] -> (ink strength in [0, 1], ink mask).

    Otsu's threshold splits ink from paper; the side that most of the border
    falls on is the paper, whichever polarity it has."""
    from skimage.filters import threshold_otsu

    if float(grey.max() - grey.min()) < 1e-3:
        raise NoDigitError("The image is uniform: there is no digit to read.")
    threshold = threshold_otsu(grey)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.mean(border > threshold) > 0.5:  # light paper, dark ink
        grey, threshold = 1.0 - grey, 1.0 - threshold
    mask = grey > threshold
    paper = float(np.median(grey[~mask])) if (~mask).any() else 0.0
    ink = float(np.percentile(grey[mask], 90))
    strength = np.clip((grey - paper) / max(ink - paper, 1e-6), 0.0, 1.0)
    return strength, mask


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) around the ink's strokes, specks left out."""
    from skimage.measure import label, regionprops

    regions = regionprops(label(mask, connectivity=2))
    largest = max(region.area for region in regions)
    boxes = np.array([region.bbox for region in regions if region.area >= MIN_COMPONENT_SHARE * largest])
    return int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max())


def digit_8x8(image: Image.Image) -> np.ndarray:
    """Any picture of one digit -> its 8x8 image (8, 8) in [0, 1], ink = 1,
    made as optdigits made theirs (see the module docstring).

    Raises NoDigitError for an image with no ink."""
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    strength, mask = _ink_map(grey)
    top, left, bottom, right = _ink_box(mask)
    crop = strength[top:bottom, left:right]
    height, width = crop.shape
    scale = BITMAP / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Area averaging (BOX) keeps thin strokes of large photos as partial ink
    # instead of skipping them; 0.35 keeps a stroke that covers a third of a pixel.
    scaled = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BOX), dtype=np.float32) > 0.35
    bitmap = np.zeros((BITMAP, BITMAP), dtype=np.float32)
    y, x = (BITMAP - size[1]) // 2, (BITMAP - size[0]) // 2
    bitmap[y:y + size[1], x:x + size[0]] = scaled
    side = BITMAP // BLOCK
    return bitmap.reshape(side, BLOCK, side, BLOCK).mean(axis=(1, 3))


@dataclass(frozen=True)
class DigitPreprocessing:
    """LeNet-5's preprocessing: a picture of a digit -> (1, 32, 32)."""

    bitmap: int = BITMAP
    block: int = BLOCK
    digit_side: int = DIGIT_SIDE
    input_side: int = INPUT_SIDE
    # The picture's longer side is brought down to this before its ink is read
    # (and large JPEGs are decoded reduced to it): the cost of preparing a
    # digit is bounded by it, never by the upload's size or shape.
    resize: int = 512

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (1, self.input_side, self.input_side)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if max(image.size) > self.resize:
            image = image.copy()
            image.thumbnail((self.resize, self.resize), Image.Resampling.BOX)
        return lenet_input(digit_8x8(image)[None])[0]
