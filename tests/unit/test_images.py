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
from app.images import decode_image

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


# -- reduced decoding and one-step preprocessing ------------------------------

def test_large_jpegs_decode_reduced_keeping_both_sides_at_least_min_side(photos):
    big = decode_image(photos["grace_hopper"].read_bytes(), LIMIT).resize((4096, 3072))
    data = encode(big, "JPEG", quality=90)
    assert decode_image(data, LIMIT).size == (4096, 3072)
    assert decode_image(data, LIMIT, min_side=256).size == (512, 384)  # libjpeg's 1/8
    assert decode_image(data, LIMIT, min_side=400).size == (1024, 768)  # 1/4: 1/8 would go under 400
    assert decode_image(encode(big, "PNG"), LIMIT, min_side=256).size == (4096, 3072)  # only JPEG


def test_one_step_preprocessing_matches_torchvisions_two_steps(photos):
    """The crop's source box resampled once vs resize-shorter-side then
    centre-crop (torchvision's eval transform): nearly the same tensor, and
    the same top-5 from the packaged EfficientNet-Lite0."""
    import torch
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode

    from models.preprocess import preprocessing_for
    from models.registry import get_entry
    from models.weights import load_pretrained

    entry = get_entry("efficientnet_lite0")
    pre = preprocessing_for(entry)
    model = load_pretrained(entry, "cpu")
    for name in ("chelsea", "coffee", "rocket", "astronaut", "motorcycle", "grace_hopper"):
        image = decode_image(photos[name].read_bytes(), LIMIT)
        two_step = F.center_crop(F.resize(image, [pre.resize], InterpolationMode(pre.interpolation)), [pre.crop])
        reference = F.normalize(F.pil_to_tensor(two_step).float() / 255, list(pre.mean), list(pre.std))
        ours = pre(image)
        assert ours.shape == reference.shape == (3, pre.crop, pre.crop) and ours.is_contiguous()
        assert (ours - reference).abs().mean() < 0.06, name
        with torch.inference_mode():
            top = model(torch.stack([ours, reference])).topk(5).indices
        assert top[0].tolist() == top[1].tolist(), name


@pytest.mark.parametrize("size", [(4000, 1), (1, 4000), (1, 1), (3, 100_000)])
def test_preprocessing_of_extreme_shapes_gives_the_crop(size):
    from models.preprocess import preprocessing_for
    from models.registry import get_entry

    pre = preprocessing_for(get_entry("efficientnet_lite0"))
    tensor = pre(Image.new("RGB", size, (10, 200, 30)))
    assert tensor.shape == (3, pre.crop, pre.crop) and bool(tensor.isfinite().all())
    # A solid colour stays that colour, normalised with mean = std = 0.5.
    assert tensor[:, 100, 100].tolist() == pytest.approx([(v / 255 - 0.5) / 0.5 for v in (10, 200, 30)], abs=1e-5)
