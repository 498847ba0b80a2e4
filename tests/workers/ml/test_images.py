"""Decoding of every accepted format, EXIF orientation, and rejection of bad input."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.support.shapes import image_bytes
from workers.ml.images import (
    IMAGE_EXTENSIONS,
    ImageDecodeError,
    ImageTooLarge,
    decode_image,
    encode_png,
    fitting_size,
    to_rgb,
)


def _gradient(size: tuple[int, int] = (24, 16)) -> Image.Image:
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2), mode="RGB")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares huge dimensions: the classic decompression-bomb probe."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _sample_files() -> dict[str, bytes]:
    rgb = _gradient()
    rgba = rgb.copy()
    rgba.putalpha(Image.new("L", rgb.size, 128))
    sixteen = Image.fromarray(np.arange(24 * 16, dtype=np.uint16).reshape(16, 24) * 150)
    assert sixteen.mode == "I;16"
    return {
        "jpeg": image_bytes(rgb, "JPEG"),
        "png_rgb": image_bytes(rgb, "PNG"),
        "png_palette": image_bytes(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "png_16bit": image_bytes(sixteen, "PNG"),
        "png_rgba": image_bytes(rgba, "PNG"),
        "png_la": image_bytes(rgba.convert("LA"), "PNG"),
        "png_grey": image_bytes(rgb.convert("L"), "PNG"),
        "png_bilevel": image_bytes(rgb.convert("1"), "PNG"),
        "webp": image_bytes(rgb, "WEBP"),
        "webp_alpha": image_bytes(rgba, "WEBP"),
        "bmp": image_bytes(rgb, "BMP"),
        "gif": image_bytes(rgb.convert("P"), "GIF"),
        "tiff": image_bytes(rgb, "TIFF"),
        "tiff_rgba": image_bytes(rgba, "TIFF"),
        "jpeg_cmyk": image_bytes(rgb.convert("CMYK"), "JPEG"),
        "jpeg_grey": image_bytes(rgb.convert("L"), "JPEG"),
    }


@pytest.mark.parametrize("name", sorted(_sample_files()))
def test_every_format_decodes_to_rgb(name: str) -> None:
    decoded = decode_image(_sample_files()[name])
    assert decoded.mode == "RGB"
    assert decoded.size == (24, 16)
    decoded.load()  # must be fully usable, not tied to a closed file


def test_extensions_are_lowercase_with_dot() -> None:
    expected = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
    assert IMAGE_EXTENSIONS == frozenset(expected)


def test_accepts_file_objects() -> None:
    decoded = decode_image(io.BytesIO(image_bytes(_gradient(), "PNG")))
    assert decoded.size == (24, 16)


def test_lossless_formats_keep_pixels() -> None:
    original = _gradient()
    for fmt in ("PNG", "BMP", "TIFF"):
        decoded = decode_image(image_bytes(original, fmt))
        assert np.array_equal(np.asarray(decoded), np.asarray(original)), fmt


def test_sixteen_bit_is_rescaled_not_clipped() -> None:
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    decoded = decode_image(image_bytes(Image.fromarray(values), "PNG"))
    assert np.asarray(decoded)[0, :, 0].tolist() == [0, 128, 255]


def test_transparency_is_composited_on_white() -> None:
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    decoded = np.asarray(decode_image(image_bytes(image, "PNG")))
    assert decoded[0, 0].tolist() == [255, 0, 0]
    assert decoded[3, 3].tolist() == [255, 255, 255]


def test_palette_transparency_is_composited_on_white() -> None:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 10, 200, 10] + [0] * (254 * 3))
    image.info["transparency"] = 1
    decoded = np.asarray(decode_image(image_bytes(image, "PNG")))
    assert decoded[0, 0].tolist() == [255, 255, 255]


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = decode_image(buffer.getvalue())
    assert decoded.getpixel((4, 4)) == (255, 0, 0)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    _gradient((40, 20)).save(buffer, "JPEG", exif=exif.tobytes())
    with Image.open(io.BytesIO(buffer.getvalue())) as stored:
        assert stored.size == (40, 20)
    assert decode_image(buffer.getvalue()).size == (20, 40)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"\x00\x01garbage\xff" * 40, "not a readable image"),
        (b"just some text, certainly not pixels\n" * 10, "not a readable image"),
        (_truncated(image_bytes(_gradient((64, 64)), "PNG")), ""),
        (_truncated(image_bytes(_gradient((64, 64)), "JPEG")), ""),
        (b"P6\n4 4\n255\n" + bytes(48), "not a readable image"),  # PPM: not on the allowlist
    ],
    ids=["empty", "garbage", "text", "truncated-png", "truncated-jpeg", "ppm"],
)
def test_bad_bytes_raise_decode_error_with_reason(data: bytes, fragment: str) -> None:
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data)
    assert caught.value.reason
    assert fragment in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_corrupted_png_crc_is_rejected_by_verify() -> None:
    data = bytearray(image_bytes(_gradient(), "PNG"))
    data[-20] ^= 0xFF  # flips a byte inside the IDAT chunk, breaking its CRC
    with pytest.raises(ImageDecodeError):
        decode_image(bytes(data))


def test_pixel_bomb_header_is_rejected() -> None:
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(_png_header_only(100_000, 100_000))
    assert "too large" in caught.value.reason
    assert "10000000000 pixels" in caught.value.reason


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_size_between_warning_and_error_threshold_is_rejected() -> None:
    # 10000 x 9000 = 90M pixels: above Pillow's warning limit, below its hard error limit.
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(_png_header_only(10_000, 9_000))
    assert caught.value.reason.startswith(
        "image is too large: 90000000 pixels (10000x9000), the limit is 89478485 pixels"
    )


def test_bomb_warning_as_error_is_still_a_decode_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageDecodeError) as caught:
            decode_image(_png_header_only(10_000, 9_000))
    assert "too large" in caught.value.reason


def test_max_pixels_limit() -> None:
    data = image_bytes(_gradient((24, 16)), "PNG")
    assert decode_image(data, max_pixels=24 * 16).size == (24, 16)
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data, max_pixels=100)
    assert caught.value.reason == (
        "image is too large: 384 pixels (24x16), the limit is 100 pixels; resize it to at most "
        "12x8 pixels (the same aspect ratio) and send it again"
    )
    assert (caught.value.width, caught.value.height, caught.value.limit) == (24, 16, 100)


def test_a_header_far_over_pillows_own_limit_is_refused_for_the_callers_limit() -> None:
    # 20000 x 20000 is over twice Pillow's MAX_IMAGE_PIXELS: its own check must not answer first.
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(_png_header_only(20_000, 20_000), max_pixels=40_000_000)
    assert caught.value.limit == 40_000_000
    assert "the limit is 40000000 pixels; resize it to at most 6324x6324 pixels" in str(
        caught.value
    )


def test_an_image_at_the_limit_is_decoded() -> None:
    data = image_bytes(_gradient((24, 16)), "PNG")
    assert decode_image(data, max_pixels=24 * 16).size == (24, 16)
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=24 * 16 - 1)


@pytest.mark.parametrize(
    ("width", "height", "limit"),
    [(24, 16, 100), (20_000, 20_000, 40_000_000), (1, 100_000, 7), (9_999, 7, 50_000), (3, 3, 9)],
)
def test_fitting_size_keeps_within_the_limit(width: int, height: int, limit: int) -> None:
    fit_width, fit_height = fitting_size(width, height, limit)
    assert fit_width * fit_height <= limit
    assert 1 <= fit_width <= width and 1 <= fit_height <= height


def test_encode_png_is_lossless_and_canonical() -> None:
    original = _gradient()
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    with_metadata = io.BytesIO()
    original.save(with_metadata, "PNG", exif=exif.tobytes(), dpi=(300, 300))
    decoded = decode_image(with_metadata.getvalue())

    encoded = encode_png(decoded)
    assert encoded == encode_png(original)
    assert encoded.startswith(b"\x89PNG")
    assert b"Camera Maker" not in encoded
    with Image.open(io.BytesIO(encoded)) as reopened:
        assert np.array_equal(np.asarray(reopened), np.asarray(original))


def test_to_rgb_handles_odd_modes() -> None:
    for mode in ("La", "PA", "RGBa", "I", "F", "HSV", "YCbCr", "LAB", "I;16B"):
        assert to_rgb(Image.new(mode, (3, 3))).mode == "RGB", mode
    floats = Image.fromarray(np.full((2, 2), 0.5, dtype=np.float32), mode="F")
    assert to_rgb(floats).getpixel((0, 0)) == (128, 128, 128)
