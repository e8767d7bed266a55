"""Safe decoding of uploads: every mode becomes 8-bit RGB, EXIF orientation
is applied, animations give their first frame, and hostile bytes get the
typed error (fast: the pixel limit is checked before decoding)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.errors import InvalidImage, TooLarge, UnsupportedImage
from app.predict.images import decode_image

LIMIT = 50_000_000


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming width x height, with a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_real_photos_decode_to_rgb(photos):
    chelsea = decode_image(photos["chelsea"].read_bytes(), LIMIT)
    assert (chelsea.mode, chelsea.size) == ("RGB", (451, 300))
    camera = decode_image(photos["camera"].read_bytes(), LIMIT)  # greyscale
    assert (camera.mode, camera.size) == ("RGB", (512, 512))


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "I", "F", "1"])
def test_every_mode_becomes_rgb(photos, mode):
    source = Image.open(photos["chelsea"]).convert("RGB").resize((64, 48))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(source.convert("L"), dtype=np.uint16) * 257)
    elif mode in ("I", "F"):
        image = source.convert("L").convert(mode)
    else:
        image = source.convert(mode)
    fmt = {"CMYK": "JPEG", "F": "TIFF", "I": "TIFF"}.get(mode, "PNG")
    decoded = decode_image(encode(image, fmt), LIMIT)
    assert decoded.mode == "RGB" and decoded.size == (64, 48)
    if mode in ("L", "I;16", "I", "F"):  # 16/32-bit greys are scaled to 8 bits, not clipped to white
        grey = np.asarray(decoded)[..., 0].astype(int)
        assert np.abs(grey - np.asarray(source.convert("L"), dtype=int)).max() <= 1


def test_transparent_pixels_read_as_white():
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    decoded = decode_image(encode(image, "PNG"), LIMIT)
    assert decoded.getpixel((0, 0)) == (255, 0, 0) and decoded.getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (60, 40), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    decoded = decode_image(encode(image, "JPEG", exif=exif), LIMIT)
    assert decoded.size == (40, 60)


def test_animated_gif_gives_its_first_frame(photos):
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert decode_image(data, LIMIT).getpixel((8, 8)) == (255, 0, 0)
    assert decode_image(photos["animated_gif"].read_bytes(), LIMIT).mode == "RGB"


def test_bomb_is_refused_from_its_header():
    with pytest.raises(TooLarge, match="pixels"):
        decode_image(png_header_only(30000, 30000), LIMIT)
    with pytest.raises(TooLarge, match="limit is 1,000"):  # under Pillow's own ceiling, ours decides
        decode_image(png_header_only(100, 100), 1000)


@pytest.mark.parametrize("case, error", [
    ("empty", InvalidImage), ("text", UnsupportedImage), ("truncated_jpeg", InvalidImage),
    ("truncated_png", InvalidImage), ("corrupt_idat", InvalidImage), ("corrupt_ihdr_crc", UnsupportedImage),
    ("eps", UnsupportedImage),
])
def test_hostile_bytes_get_typed_errors(photos, case, error):
    assert hostile(photos, case) is not None
    with pytest.raises(error):
        decode_image(hostile(photos, case), LIMIT)


def hostile(photos, case: str) -> bytes:
    png = photos["chelsea"].read_bytes()
    jpeg = photos["grace_hopper"].read_bytes()
    if case == "empty":
        return b""
    if case == "text":
        return b"Hello, I am not an image.\n" * 10
    if case == "truncated_jpeg":
        return jpeg[: len(jpeg) // 2]
    if case == "truncated_png":
        return png[: len(png) // 2]
    if case == "corrupt_idat":
        data = bytearray(png)
        start = png.index(b"IDAT") + 100
        data[start:start + 40] = bytes(b ^ 0x55 for b in data[start:start + 40])
        return bytes(data)
    if case == "corrupt_ihdr_crc":
        data = bytearray(png)
        data[29] ^= 0xFF  # the IHDR chunk's CRC
        return bytes(data)
    if case == "eps":  # Pillow could open it, via Ghostscript: not on our list
        return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    raise ValueError(case)
