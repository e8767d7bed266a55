"""Decoding uploaded bytes into an RGB image, safely.

The header is read first and the pixel count checked against the limit
before anything is decoded (a 30000x30000 PNG is refused in microseconds).
Only raster formats are opened: Pillow's EPS plugin would run Ghostscript.
EXIF orientation is applied; greyscale, alpha, palette, CMYK and 16/32-bit
images become 8-bit RGB; an animated image gives its first frame.

Given the size the model's preprocessing needs (``min_side``), a JPEG is
decoded reduced (Pillow's ``draft``: libjpeg scales by 1/2, 1/4 or 1/8 in the
DCT, keeping both sides >= min_side), so a 12-megapixel photo costs about
what a 1-megapixel one does.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import InvalidImage, TooLarge, UnsupportedImage

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
# Pillow keeps one pointer per row (and decodes PNG row by row): a 1 x 4,000,000 strip,
# within the pixel limit, costs 64 MB and 3x a square's time. JPEG and WebP stop here too.
MAX_SIDE = 65_535
_HIGH_DEPTH_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def decode_image(data: bytes, max_pixels: int, min_side: int | None = None) -> Image.Image:
    """Bytes -> an upright 8-bit RGB image; a JPEG reduced while both sides
    stay >= ``min_side``. Raises InvalidImage, UnsupportedImage, TooLarge."""
    if not data:
        raise InvalidImage("The file is empty (0 bytes); choose an image file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, when above ours
        raise TooLarge(f"{exc} The limit here is {max_pixels:,} pixels.") from None
    except UnidentifiedImageError:
        raise UnsupportedImage(f"Not an image this server can read, or its header is corrupt; "
                               f"send one of {', '.join(FORMATS)}.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"The image header is corrupt ({exc}).") from None
    width, height = image.size
    if width * height > max_pixels:
        raise TooLarge(f"The image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,} pixels.")
    if max(width, height) > MAX_SIDE:
        raise TooLarge(f"The image is {width}x{height}; sides longer than {MAX_SIDE:,} pixels are not accepted.")
    try:
        if min_side and image.format == "JPEG":
            image.draft(image.mode, (min_side, min_side))
        image.load()  # the first frame only, for animations
        image = _upright(image)
        return _to_rgb(image)
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"The image is truncated or corrupt ({exc}).") from None


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block is ignored, not fatal."""
    try:
        return ImageOps.exif_transpose(image)
    except (KeyError, ValueError, TypeError, SyntaxError):
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _HIGH_DEPTH_MODES:
        pixels = np.asarray(image, dtype=np.float32)
        top = float(pixels.max(initial=0))
        scale = 1.0 if top <= 255 else 255 / (65535 if top <= 65535 else top)
        image = Image.fromarray(np.clip(pixels * scale, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGB", image.size, (255, 255, 255))  # transparent areas read as white paper
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")
