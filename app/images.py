"""Decoding uploaded bytes into an RGB image, safely.

The header is read first and the cost checked before anything is decoded:
the pixel count against the pixel limit, and the bytes that decoding and
converting to RGB will allocate (``decode_bytes``: the mode's bytes per
pixel, the conversion's buffers, a progressive JPEG's coefficients) against
the same budget an 8-bit RGB image at the pixel limit takes. So a
30000x30000 PNG, or a 7000x7000 32-bit float TIFF of 300 KB (within the
pixel limit, but ~0.4 GB and seconds to decode and convert), is refused in
microseconds. Only raster formats are opened: Pillow's EPS plugin would run
Ghostscript. EXIF orientation is applied; greyscale, alpha, palette, CMYK
and 16/32-bit images become 8-bit RGB; an animated image gives its first
frame.

Given the size the model's preprocessing needs (``min_side``), a JPEG is
decoded reduced (Pillow's ``draft``: libjpeg scales by 1/2, 1/4 or 1/8 in the
DCT, keeping both sides >= min_side), so a 12-megapixel photo costs about
what a 1-megapixel one does.
"""

from __future__ import annotations

import io
import math
import re
import warnings

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from app.errors import InvalidImage, TooLarge, UnsupportedImage

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
# Pillow keeps one pointer per row (and decodes PNG row by row): a 1 x 4,000,000 strip,
# within the pixel limit, costs 64 MB and 3x a square's time. JPEG and WebP stop here too.
MAX_SIDE = 65_535
_HIGH_DEPTH_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}

# Bytes per pixel Pillow stores for a decoded image (its Storage.c: 8-bit single-band
# modes one byte, 16-bit greys two, every other mode, RGB included, 32-bit pixels).
RGB_BYTES = 4
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# The most bytes per pixel alive at once while decoding and in _to_rgb, the decoded image
# included: greys and palettes + the RGB copy; alpha: (+ an RGBA copy) + the white background;
# 16-bit: + the scaled copy + L, then L + RGB (+ a byte measured); 32-bit (I, F): + the scaled
# copy + L. Measured peaks match these within 2% (tests/unit/test_images.py).
_PEAK_BYTES = {"RGB": 4, "1": 5, "L": 5, "P": 5, "CMYK": 8, "RGBA": 8, "RGBa": 8, "LA": 12, "La": 12, "PA": 12,
               "I;16": 8, "I;16L": 8, "I;16B": 12, "I;16N": 12, "I": 9, "F": 9}
_OTHER_MODE_PEAK = 8  # YCbCr, LAB, HSV ...: 32-bit pixels + the RGB copy
# Decoders that hold more than the image: libwebp decodes into its own RGBA (or, lossless, ARGB
# and transform) buffers that Pillow then copies (measured: up to 22 bytes per pixel in all).
_DECODER_BYTES = {"WEBP": 20}
_MODE_NAMES = {"1": "1-bit", "L": "8-bit grey", "P": "palette", "CMYK": "CMYK", "RGB": "8-bit RGB",
               "I": "32-bit integer", "F": "32-bit float", "I;16": "16-bit grey", "I;16B": "16-bit grey",
               "I;16L": "16-bit grey", "I;16N": "16-bit grey"}


def decode_budget(max_pixels: int) -> int:
    """The bytes one decode may allocate: what an 8-bit RGB image at the pixel limit takes."""
    return max_pixels * RGB_BYTES


def decode_bytes(image: Image.Image, frame_size: tuple[int, int] | None = None, transposed: bool = False) -> int:
    """What decoding ``image`` (opened, not yet loaded; a JPEG after ``draft``)
    and converting it to upright 8-bit RGB will allocate at its peak, in bytes:
    the pixels times the mode's peak bytes per pixel (``_PEAK_BYTES``), plus the
    rotated copy where the EXIF orientation asks for one (``transposed``), plus a
    progressive JPEG's whole-image DCT coefficients: libjpeg keeps 2 bytes per
    coefficient of every component of the frame (``frame_size``: the size before
    ``draft``), at full size even when decoding reduced (libjpeg's jdcoefct.c;
    a 6000x6000 4:2:0 JPEG: 108 MB)."""
    width, height = image.size
    mode = image.mode
    peak = _PEAK_BYTES.get(mode, _OTHER_MODE_PEAK) + _DECODER_BYTES.get(image.format, 0)
    if mode == "P" and "transparency" in image.info:
        peak += 4  # + the RGBA copy before the white background
    total = width * height * (peak + (_STORED_BYTES.get(mode, 4) if transposed else 0))
    if image.format == "JPEG" and image.info.get("progressive"):
        frame_width, frame_height = frame_size or image.size
        # + libjpeg's working buffers, about a byte per frame pixel (measured: 5 MB beside 18 MB of
        # coefficients for a 3000x2000 4:2:0 frame)
        total += _jpeg_coefficient_bytes(image, (frame_width, frame_height)) + frame_width * frame_height
    return total


def _jpeg_coefficient_bytes(image: Image.Image, frame_size: tuple[int, int]) -> int:
    """Components' sampling factors from the frame header (Pillow's ``layer``: id, h, v, table);
    each component's blocks padded to whole MCUs, as libjpeg allocates them."""
    width, height = frame_size
    layers = getattr(image, "layer", None) or [(0, 1, 1, 0)] * len(image.getbands())
    h_max = max(h for _, h, _, _ in layers)
    v_max = max(v for _, _, v, _ in layers)
    blocks = sum(math.ceil(width / (8 * h_max)) * h * math.ceil(height / (8 * v_max)) * v for _, h, v, _ in layers)
    return blocks * 64 * 2


def decode_image(data: bytes, max_pixels: int, min_side: int | None = None) -> Image.Image:
    """Bytes -> an upright 8-bit RGB image; a JPEG reduced while both sides
    stay >= ``min_side``. Raises InvalidImage, UnsupportedImage, and TooLarge
    (over ``max_pixels``, a side over MAX_SIDE, or decoding would allocate over
    ``decode_budget(max_pixels)``)."""
    if not data:
        raise InvalidImage("The file is empty (0 bytes); choose an image file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling (2x its MAX_IMAGE_PIXELS), above ours
        size = re.search(r"\((\d+) pixels\)", str(exc))  # "Image size (N pixels) exceeds limit of ..."
        told = f"{int(size[1]):,} pixels" if size else f"over {2 * Image.MAX_IMAGE_PIXELS:,} pixels"
        raise TooLarge(f"The image is {told}; the limit is {max_pixels:,} pixels.") from None
    except UnidentifiedImageError:
        raise UnsupportedImage(f"Not an image this server can read, or its header is corrupt; "
                               f"send one of {', '.join(FORMATS)}.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"The image header is corrupt ({exc}).") from None
    width, height = frame_size = image.size
    if width * height > max_pixels:
        raise TooLarge(f"The image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,} pixels.")
    if max(width, height) > MAX_SIDE:
        raise TooLarge(f"The image is {width}x{height}; sides longer than {MAX_SIDE:,} pixels are not accepted.")
    try:
        if min_side and image.format == "JPEG":
            image.draft(image.mode, (min_side, min_side))
        transposed = _orientation(image, loaded=False) != 1
        _check_decode_cost(image, frame_size, transposed, max_pixels)
        image.load()  # the first frame only, for animations
        if not transposed and _orientation(image, loaded=True) != 1:  # a PNG's eXIf chunk after its pixels
            _check_decode_cost(image, frame_size, True, max_pixels)
        image = _upright(image)
        return _to_rgb(image)
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"The image is truncated or corrupt ({exc}).") from None


def _orientation(image: Image.Image, loaded: bool) -> int:
    """The EXIF orientation (1: upright) known so far, without decoding: a PNG
    whose eXIf chunk follows its pixels tells only once loaded (Pillow's
    PngImageFile.getexif would load it); a broken EXIF block counts as upright."""
    if image.format == "PNG" and "exif" not in image.info and not loaded:
        return 1
    try:
        return image.getexif().get(ExifTags.Base.Orientation, 1) or 1
    except (KeyError, ValueError, TypeError, SyntaxError, OSError):
        return 1


def _check_decode_cost(image: Image.Image, frame_size: tuple[int, int], transposed: bool, max_pixels: int) -> None:
    needed, budget = decode_bytes(image, frame_size, transposed), decode_budget(max_pixels)
    if needed > budget:
        width, height = frame_size
        kind = _MODE_NAMES.get(image.mode, f"{image.mode}-mode")
        raise TooLarge(f"Decoding this {width}x{height} {kind} {image.format} image would take "
                       f"{needed / 1e6:,.0f} MB of memory; the limit is {budget / 1e6:,.0f} MB (what an 8-bit "
                       f"RGB image at the {max_pixels:,}-pixel limit takes). Send it smaller, or as an 8-bit "
                       f"RGB JPEG or PNG.")


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, in place (exif_transpose would otherwise copy
    even an upright image); a broken EXIF block is ignored, not fatal."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except (KeyError, ValueError, TypeError, SyntaxError):
        pass
    return image


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit greys -> 8-bit, scaled (not clipped) from the range they use:
    a float image up to 1.0 as 0..1 (the convention of float images:
    scikit-image, OpenCV, scientific TIFFs), otherwise up to 255 as is, up to
    65535 as 16-bit, beyond that by their maximum; rounded, negatives black.
    Pillow's own ops: one scaled copy and the L image beside the decoded one
    (``_PEAK_BYTES``)."""
    if image.mode in ("I;16B", "I;16N"):  # Pillow's extrema and point tables take little-endian 16-bit only
        image = image.convert("I")
    top = image.getextrema()[1]
    if image.mode == "F" and top <= 1.0:
        scale = 255.0
    else:
        scale = 1.0 if top <= 255 else 255 / (65535 if top <= 65535 else top)
    if scale != 1.0 or image.mode == "F":
        image = image.point(lambda v: v * scale + 0.5)  # F -> L truncates: + 0.5 rounds
    return image.convert("L")  # clips to 0..255


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _HIGH_DEPTH_MODES:
        image = _high_depth_to_l(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in _ALPHA_MODES:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))  # transparent areas read as white paper
        background.paste(rgba, mask=rgba)  # an RGBA mask: its alpha band
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


# Below this many pixels a side carries too little to read: the model's preprocessing stretches it
# to its crop (a 4000x1 strip becomes 224 identical rows).
MIN_INFORMATIVE_SIDE = 8
# Largest spread of levels (0-255, any band) an image may have and still be one flat colour
# (a solid colour saved as JPEG wobbles by a level or two).
FLAT_LEVELS = 2


def degenerate_notes(image: Image.Image) -> list[str]:
    """Why a top-k computed from ``image`` (decoded, 8-bit RGB) says little
    about it, in plain words: a blank or one-colour image, a side under
    MIN_INFORMATIVE_SIDE pixels. Empty for an ordinary picture."""
    notes = []
    width, height = image.size
    if min(width, height) < MIN_INFORMATIVE_SIDE:
        short = min(width, height)
        notes.append(f"The image is {width}×{height} pixels: its {short}-pixel side is stretched to fill the "
                     f"model's square input, so the model sees the same {short} pixel(s) repeated across that "
                     f"side; the top-5 says little about it.")
    extrema = image.getextrema()
    if all(high - low <= FLAT_LEVELS for low, high in extrema):
        colour = ", ".join(str((low + high) // 2) for low, high in extrema)
        blank = " (blank)" if all(low >= 255 - FLAT_LEVELS for low, _ in extrema) or all(
            high <= FLAT_LEVELS for _, high in extrema) else ""
        notes.append(f"The image is one flat colour{blank}, RGB ({colour}): there is nothing in it to recognise, "
                     f"so the top-5 is what the model guesses for an empty input, not a reading of its content.")
    return notes
