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
PREPARATION = ("The paper's uneven light (a lamp's gradient, a shadow) is flattened out, then Otsu's threshold "
               "finds the ink (dark on light or light on dark), the picture is cropped to it, its "
               "longer side scaled to 32 px and centred in a 32x32 bitmap, counted in 4x4 blocks to 8x8 "
               "(as the optdigits were made), then upsampled to 24x24 and padded to LeNet-5's 32x32.")
DATASET = "scikit-learn's handwritten digits (load_digits: the UCI optdigits test set, 8x8)"
# Components of the ink smaller than this share of the largest are specks, not strokes.
MIN_COMPONENT_SHARE = 0.05
# The paper's light is estimated on a copy this long (px) on its longer side.
BACKGROUND_SIDE = 128
# Ink darker than its paper by less than this share of the paper's light (or,
# light on dark, brighter by less than this grey level in [0, 1]) is JPEG
# noise or a crease, not a stroke.
MIN_INK_CONTRAST = 0.15
# A picture at least this many px on both sides is taken as a photo whose light may vary.
PHOTO_MIN_SIDE = 64
# Strokes of one digit cover well under this share of any picture of it.
MAX_INK_SHARE = 0.6


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


def _paper_light(grey: np.ndarray, dark_ink: bool) -> np.ndarray:
    """The paper's own grey level at every pixel (H, W), strokes left out: a
    grey closing (dark ink) or opening (light ink) removes every feature
    narrower than its window, a quarter of the picture's shorter side, while
    lighting gradients and shadows, which are wider, stay (Gonzalez & Woods,
    "Digital Image Processing", 4th ed., 9.6: correcting uneven illumination
    with morphological top-hats). Done on a copy at most ``BACKGROUND_SIDE``
    px long and scaled back, so it costs the same at any size."""
    from scipy.ndimage import gaussian_filter, grey_closing, grey_opening

    height, width = grey.shape
    shrink = min(1.0, BACKGROUND_SIDE / max(height, width))
    small_size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    small = np.asarray(Image.fromarray(grey).resize(small_size, Image.Resampling.BOX), dtype=np.float32)
    window = max(3, min(small.shape) // 4)
    paper = (grey_closing if dark_ink else grey_opening)(small, size=(window, window), mode="nearest")
    # The square window leaves steps at a shadow's edge; blur them to the light's own smoothness.
    paper = gaussian_filter(paper, sigma=window / 6, mode="nearest")
    return np.asarray(Image.fromarray(paper).resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _ink_map(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey levels (H, W) in [0, 1] -> (ink strength in [0, 1], ink mask).

    A photo (both sides at least ``PHOTO_MIN_SIDE``): the paper is most of
    the picture, so its median lies on the paper's side of the midrange
    between the darkest and lightest pixels, which gives the polarity; the
    paper's light at each pixel (``_paper_light``) is divided out (dark ink:
    reflectance = grey / paper) or subtracted (light ink), so a lamp's
    gradient or a shadow is not ink. A smaller picture is a crop or a
    drawing (like the training bitmaps, whose strokes are as wide as a quarter
    of the frame), its light even: the side most of the border falls on is
    the paper. Otsu's threshold then splits the ink from the paper.

    Raises NoDigitError when nothing stands out from the paper or the "ink"
    covers too much of the picture to be one digit."""
    from skimage.filters import threshold_otsu

    if float(grey.max() - grey.min()) < 1e-3:
        raise NoDigitError("The image is uniform: there is no digit to read.")
    if min(grey.shape) >= PHOTO_MIN_SIDE:
        low, high = np.percentile(grey, [0.1, 99.9])
        dark_ink = float(np.median(grey)) > (low + high) / 2
        paper = _paper_light(grey, dark_ink)
        contrast = np.clip(1.0 - grey / np.maximum(paper, 1e-3) if dark_ink else grey - paper, 0.0, 1.0)
    else:
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        contrast = 1.0 - grey if np.mean(border > threshold_otsu(grey)) > 0.5 else grey
    mask = contrast > threshold_otsu(contrast)
    ink = float(np.percentile(contrast[mask], 90)) if mask.any() else 0.0
    background = float(np.median(contrast[~mask])) if (~mask).any() else 0.0
    if ink - background < MIN_INK_CONTRAST:
        raise NoDigitError("Nothing stands out from the paper: there is no digit to read.")
    if mask.mean() > MAX_INK_SHARE:
        raise NoDigitError(f"The ink would cover {mask.mean():.0%} of the picture: there is no digit to read "
                           f"in it (a digit's strokes cover less than {MAX_INK_SHARE:.0%}).")
    strength = np.clip((contrast - background) / max(ink - background, 1e-6), 0.0, 1.0)
    return strength, mask


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) around the ink's strokes, specks left out."""
    from skimage.measure import label, regionprops

    regions = regionprops(label(mask, connectivity=2))
    largest = max(region.area for region in regions)
    boxes = np.array([region.bbox for region in regions if region.area >= MIN_COMPONENT_SHARE * largest])
    return int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max())


def _ink(image: Image.Image) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The ink's strength (H, W) in [0, 1] and its box (top, left, bottom, right)."""
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    strength, mask = _ink_map(grey)
    return strength, _ink_box(mask)


def input_region(image: Image.Image) -> tuple[float, float, float, float]:
    """(x, y, width, height) in ``image``'s pixels of the square that
    LeNet-5's 32x32 input shows: the ink box's longer side fills the 32-px
    bitmap, which becomes the input's central 24x24 (``lenet_input``), so the
    input spans 32/24 of that side around the box's centre (it may reach past
    the picture's edges). Raises NoDigitError for an image with no ink."""
    _, (top, left, bottom, right) = _ink(image)
    side = max(bottom - top, right - left) * INPUT_SIDE / DIGIT_SIDE
    return (left + right - side) / 2, (top + bottom - side) / 2, side, side


def digit_8x8(image: Image.Image) -> np.ndarray:
    """Any picture of one digit -> its 8x8 image (8, 8) in [0, 1], ink = 1,
    made as optdigits made theirs (see the module docstring).

    Raises NoDigitError for an image with no ink."""
    strength, (top, left, bottom, right) = _ink(image)
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

    def _reduced(self, image: Image.Image) -> Image.Image:
        if max(image.size) > self.resize:
            image = image.copy()
            image.thumbnail((self.resize, self.resize), Image.Resampling.BOX)
        return image

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return lenet_input(digit_8x8(self._reduced(image))[None])[0]

    def input_region(self, image: Image.Image) -> tuple[float, float, float, float]:
        """Where the input lies in ``image`` (x, y, width, height in its pixels; see ``input_region``)."""
        reduced = self._reduced(image)
        x, y, width, height = input_region(reduced)
        sx, sy = image.width / reduced.width, image.height / reduced.height
        return x * sx, y * sy, width * sx, height * sy

    def input_picture(self, image: Image.Image) -> Image.Image:
        """The net's input as an RGB picture (32 x 32 px): ink black on white paper, as the input shows it."""
        ink = self(image)[0].add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        return Image.fromarray(255 - ink, "L").convert("RGB")
