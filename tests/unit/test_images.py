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


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "I;16B", "I", "F", "1"])
def test_every_mode_becomes_rgb(photos, mode):
    source = Image.open(photos["chelsea"]).convert("RGB").resize((64, 48))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(source.convert("L"), dtype=np.uint16) * 257)
    elif mode == "I;16B":  # big-endian 16-bit grey, as some TIFF writers store it
        grey = (np.asarray(source.convert("L"), dtype=np.uint16) * 257).astype(">u2")
        image = Image.frombuffer("I;16B", source.size, grey.tobytes(), "raw", "I;16B", 0, 1)
    elif mode in ("I", "F"):
        image = source.convert("L").convert(mode)
    else:
        image = source.convert(mode)
    fmt = {"CMYK": "JPEG", "F": "TIFF", "I": "TIFF", "I;16B": "TIFF"}.get(mode, "PNG")
    decoded = decode_image(encode(image, fmt), LIMIT)
    assert decoded.mode == "RGB" and decoded.size == (64, 48)
    if mode in ("L", "I;16", "I;16B", "I", "F"):  # 16/32-bit greys are scaled to 8 bits, not clipped to white
        grey = np.asarray(decoded)[..., 0].astype(int)
        assert np.abs(grey - np.asarray(source.convert("L"), dtype=int)).max() <= 1


def test_a_float_image_in_0_to_1_reads_as_0_to_255(photos):
    """The float convention (scikit-image, OpenCV): 1.0 is white, not almost black."""
    grey = Image.open(photos["chelsea"]).convert("L").resize((64, 48))
    image = Image.fromarray(np.asarray(grey, dtype=np.float32) / 255)
    decoded = decode_image(encode(image, "TIFF"), LIMIT)
    assert np.abs(np.asarray(decoded)[..., 0].astype(int) - np.asarray(grey, dtype=int)).max() <= 1


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
    with pytest.raises(TooLarge) as refused:  # over Pillow's own ceiling: one limit is named, ours
        decode_image(png_header_only(30000, 30000), LIMIT)
    assert str(refused.value) == "The image is 900,000,000 pixels; the limit is 50,000,000 pixels."
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


# -- decode cost bounded by bytes, not only pixels (issue 11, item 4) ----------

def _noise(mode: str, size: tuple[int, int]) -> Image.Image:
    """An incompressible image of ``mode`` (random levels; 16/32-bit greys past 255)."""
    width, height = size
    rng = np.random.default_rng(0)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65535, (height, width)).astype(np.uint16))
    if mode == "I;16B":
        levels = rng.integers(0, 65535, (height, width)).astype(">u2").tobytes()
        return Image.frombuffer("I;16B", size, levels, "raw", "I;16B", 0, 1)
    if mode == "F":
        return Image.fromarray(rng.random((height, width), dtype=np.float32) * 1000)
    if mode == "I":
        return Image.fromarray(rng.integers(0, 100_000, (height, width)).astype(np.int32))
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).convert(mode)


def test_decode_bytes_of_known_headers():
    """The exact arithmetic: pixels x the mode's peak bytes per pixel, and a progressive JPEG's
    coefficients (2 bytes each, every component at its sampling, whole MCUs) at full size."""
    from app.images import decode_bytes

    def opened(image: Image.Image, fmt: str, **kwargs) -> Image.Image:
        return Image.open(io.BytesIO(encode(image, fmt, **kwargs)))

    assert decode_bytes(opened(Image.new("RGB", (700, 500)), "PNG")) == 700 * 500 * 4
    assert decode_bytes(opened(Image.new("F", (700, 500)), "TIFF")) == 700 * 500 * 9
    assert decode_bytes(opened(Image.new("L", (700, 500)), "PNG")) == 700 * 500 * 5
    assert decode_bytes(opened(Image.new("RGBA", (700, 500)), "PNG"), transposed=True) == 700 * 500 * (8 + 4)
    # 1600x1200, 4:2:0: Y 100x75 MCUs of 2x2 blocks, Cb and Cr one block per MCU; + a byte per pixel.
    jpeg = opened(Image.new("RGB", (1600, 1200)), "JPEG", progressive=True)
    coefficients = (200 * 150 + 2 * 100 * 75) * 64 * 2
    assert decode_bytes(jpeg) == 1600 * 1200 * 4 + coefficients + 1600 * 1200
    jpeg.draft("RGB", (300, 300))  # reduced output (libjpeg's 1/4), the same full-size coefficients
    assert jpeg.size == (400, 300)
    assert decode_bytes(jpeg, (1600, 1200)) == 400 * 300 * 4 + coefficients + 1600 * 1200


def test_the_issues_float_tiff_is_refused_from_its_header():
    """7000x7000 32-bit float, deflated to ~300 KB: within the 50 M pixel limit, but decoding
    and converting it would take 441 MB (it took ~10 s and ~0.5 GB before)."""
    data = encode(Image.new("F", (7000, 7000), 0.0), "TIFF", compression="tiff_adobe_deflate")
    assert len(data) < 400_000
    with pytest.raises(TooLarge, match=r"7000x7000 32-bit float TIFF image would take 441 MB.*limit is 200 MB"):
        decode_image(data, LIMIT)


@pytest.mark.parametrize("mode, fmt", [("F", "TIFF"), ("I;16", "PNG"), ("LA", "PNG"), ("RGBA", "PNG"),
                                       ("CMYK", "TIFF"), ("RGB", "WEBP")])
def test_every_mode_within_the_budget_of_rgb_at_the_pixel_limit(mode, fmt):
    """An image of any mode is decoded while it costs at most what an 8-bit RGB image at the pixel
    limit does, and refused (413 too_large) one size step beyond."""
    from app.images import decode_budget, decode_bytes

    limit = 400 * 300
    peak = decode_bytes(Image.open(io.BytesIO(encode(_noise(mode, (40, 30)), fmt)))) // (40 * 30)
    side = int((decode_budget(limit) / peak) ** 0.5)  # the largest square within the budget
    assert decode_image(encode(_noise(mode, (side, side)), fmt), limit).size == (side, side)
    with pytest.raises(TooLarge, match="would take"):
        decode_image(encode(_noise(mode, (side + 2, side + 2)), fmt), limit)
    assert decode_image(encode(_noise("RGB", (400, 300)), "PNG"), limit).size == (400, 300)


@pytest.mark.parametrize("mode, fmt, kwargs", [
    ("RGB", "PNG", {}), ("P", "PNG", {"transparency": 0}), ("LA", "PNG", {}), ("I;16", "PNG", {}), ("I;16B", "TIFF", {}),
    ("F", "TIFF", {"compression": "tiff_adobe_deflate"}), ("I", "TIFF", {}), ("CMYK", "JPEG", {"progressive": True}),
    ("RGB", "JPEG", {"progressive": True}), ("RGB", "WEBP", {"lossless": True}), ("RGBA", "WEBP", {}),
])
def test_measured_decode_memory_stays_within_decode_bytes(mode, fmt, kwargs):
    """The estimate is an upper bound in fact: this process's peak RSS growth (VmHWM, reset
    after trimming the heap) while decoding a 2000x1500 image, against decode_bytes."""
    import torch

    from app.images import decode_bytes
    from models.speed_backends import CpuBackend

    data = encode(_noise(mode, (2000, 1500)), fmt, **kwargs)
    opened = Image.open(io.BytesIO(data))
    opened.draft(opened.mode, (224, 224)) if fmt == "JPEG" else None
    estimate = decode_bytes(opened, (2000, 1500))
    del opened
    memory = CpuBackend(torch.device("cpu"))
    reset_ok = memory.reset_peak()
    image = decode_image(data, LIMIT, 224)
    peak = memory.peak_bytes(reset_ok)
    assert peak is not None, "this kernel does not let VmHWM be reset"
    assert image.mode == "RGB"
    assert peak <= estimate * 1.15 + 4 * 2**20, (mode, fmt, peak, estimate)


@pytest.mark.parametrize("size, colour, expected", [
    ((224, 224), (255, 255, 255), ["one flat colour (blank)"]),
    ((300, 200), (200, 120, 40), ["one flat colour, RGB (200, 120, 40)"]),
    ((4000, 1), (10, 200, 30), ["4000×1 pixels: its 1-pixel side is stretched", "one flat colour"]),
])
def test_degenerate_images_get_notes(size, colour, expected):
    from app.images import degenerate_notes

    notes = degenerate_notes(Image.new("RGB", size, colour))
    assert len(notes) == len(expected) and all(want in note for want, note in zip(expected, notes)), notes


def test_ordinary_photos_get_no_notes(photos):
    from app.images import degenerate_notes

    for name in ("chelsea", "coffee", "rocket", "grace_hopper", "camera"):
        assert degenerate_notes(decode_image(photos[name].read_bytes(), LIMIT)) == [], name
    strip = np.random.default_rng(0).integers(0, 255, (1, 4000, 3), dtype=np.uint8)
    assert len(degenerate_notes(Image.fromarray(strip))) == 1  # thin, but not one colour
