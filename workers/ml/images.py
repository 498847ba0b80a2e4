"""Safe image decoding and canonical encoding (Pillow + numpy only, no torch).

Every image that enters the ML pipeline (uploads, data set archives, prediction requests) goes
through :func:`decode_image`, so hostile or odd files are rejected in one place with a reason a
person can read, and every accepted image comes out as a plain 8-bit RGB picture.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import re
import struct
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageDecodeError",
    "ImageTooLarge",
    "decode_image",
    "encode_png",
    "fitting_size",
    "to_rgb",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)

# Pillow's own default limit (about 89.5 megapixels, a 1024 MiB RGBA image).
DEFAULT_MAX_PIXELS = 89_478_485

# Only the formats behind IMAGE_EXTENSIONS (MPO is how Pillow names many camera JPEGs). Pillow
# would otherwise also try exotic plugins, e.g. EPS, which shells out to Ghostscript.
_FORMAT_NAMES = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF")
_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_PIXEL_COUNT = re.compile(r"\((\d+) pixels\)")


class ImageDecodeError(ValueError):
    """Raised when bytes are not an image this pipeline accepts.

    ``reason`` is a complete sentence meant to be shown to the person who supplied the file.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageTooLarge(ImageDecodeError):
    """The header says the image has more pixels than the caller allows: refused unread.

    ``width``, ``height`` and ``limit`` let a caller word its own message (in the user's
    language); ``reason`` names the limit and a size to resize to.
    """

    def __init__(self, *, width: int, height: int, limit: int) -> None:
        self.width, self.height, self.limit = width, height, limit
        fit_width, fit_height = fitting_size(width, height, limit)
        super().__init__(
            f"image is too large: {width * height} pixels ({width}x{height}), the limit is "
            f"{limit} pixels; resize it to at most {fit_width}x{fit_height} pixels "
            "(the same aspect ratio) and send it again"
        )


def fitting_size(width: int, height: int, limit: int) -> tuple[int, int]:
    """The largest size of the same aspect ratio as ``width`` x ``height`` (rounded down)
    whose pixel count is at most ``limit``: what to resize an image refused as too large to."""
    scale = min(1.0, math.sqrt(limit / (width * height)))
    fit_width, fit_height = max(1, int(width * scale)), max(1, int(height * scale))
    while fit_width * fit_height > limit:  # float rounding can leave it one row over
        if fit_width >= fit_height:
            fit_width -= 1
        else:
            fit_height -= 1
    return fit_width, fit_height


def decode_image(source: bytes | BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode untrusted image bytes into an upright 8-bit RGB image.

    The file is verified (by formats whose ``verify`` checks anything), fully loaded, rotated
    by its EXIF orientation, reduced to its first frame and converted to RGB with any
    transparency composited on white.

    ``max_pixels`` bounds width * height. It is compared with the size the header declares
    before a single pixel is decoded (one comparison), so a pixel bomb costs no more than its
    header; Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` guard still applies on top (it
    raises at twice that value), so raising ``max_pixels`` above it only helps up to that point.

    Raises:
        ImageTooLarge: when the header declares more than ``max_pixels`` pixels.
        ImageDecodeError: for anything else that is not a readable image. No other exception
            escapes for bad input bytes.
    """
    if max_pixels < 1:
        raise ValueError("max_pixels must be at least 1")
    data = source if isinstance(source, bytes | bytearray | memoryview) else source.read()
    data = bytes(data)
    if not data:
        raise ImageDecodeError("the file is empty")
    try:
        # Not closed: it reads from memory, and once loaded its pixels are all it needs, so
        # an RGB image is returned as it is, without a copy.
        image = _open_header(data)
        _check_size(image.size, max_pixels)
        if type(image).verify is not ImageFile.ImageFile.verify:
            # The format checks more than decoding does (PNG: every chunk's checksum), and
            # verify() leaves the image unusable. Other formats' verify() only closes the file.
            image.verify()
            image = _open_header(data)
        image.load()
        _exif_upright(image)
        if image.mode == "RGB" and "transparency" not in image.info:
            return image
        return to_rgb(image)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(_too_large_reason(exc, max_pixels)) from exc
    except Image.DecompressionBombWarning as exc:
        # Only reached when the process turned warnings into errors; same meaning as our check.
        raise ImageDecodeError(_too_large_reason(exc, max_pixels)) from exc
    except MemoryError as exc:
        raise ImageDecodeError("the image needs more memory to decode than is available") from exc
    except Exception as exc:
        # Pillow's format plugins raise a zoo of types on hostile input (OSError, SyntaxError,
        # struct.error, IndexError, ZeroDivisionError, ...); callers must only ever see one.
        raise ImageDecodeError(_unreadable_reason(exc)) from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as a new 8-bit RGB image; transparency is composited on white.

    16-bit and floating point greyscale images are rescaled instead of clipped, because Pillow's
    own conversion clips anything above 255 to white.
    """
    mode = image.mode
    if mode in ("P", "L", "RGB") and "transparency" in image.info:
        # A transparent palette entry or colour key is alpha in disguise.
        return _composite_on_white(image.convert("RGBA"))
    if mode == "RGB":
        return image.copy()
    if mode in _ALPHA_MODES:
        # Pillow cannot convert premultiplied "La" straight to RGBA.
        rgba = image.convert("LA").convert("RGBA") if mode == "La" else image.convert("RGBA")
        return _composite_on_white(rgba)
    if mode.startswith("I") or mode == "F":
        grey = Image.fromarray(_to_uint8_grey(np.asarray(image), mode), mode="L")
        return grey.convert("RGB")
    return image.convert("RGB")


def encode_png(image: Image.Image) -> bytes:
    """Encode ``image`` as canonical lossless PNG bytes.

    Metadata (EXIF, ICC profile, text chunks, DPI) is dropped and the compression settings are
    fixed, so the same pixels always produce the same bytes; that makes the output safe to hash
    and to store as the single normalised copy of an upload.
    """
    if image.mode not in ("1", "L", "LA", "I;16", "RGB", "RGBA", "P"):
        image = to_rgb(image)
    clean = image.copy()
    # Keep only what changes pixel meaning; everything else would leak into the PNG chunks.
    clean.info = {k: v for k, v in image.info.items() if k == "transparency"}
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


@functools.cache
def _allowed_formats() -> tuple[str, ...]:
    # Pillow registers most plugins lazily and Image.open(formats=...) fails with KeyError on a
    # name that is not registered yet; load them all once, then keep the ones this build has.
    Image.init()
    return tuple(name for name in _FORMAT_NAMES if name in Image.OPEN)


def _open_header(data: bytes) -> ImageFile.ImageFile:
    """What ``Image.open(formats=_allowed_formats())`` does, less its pixel-bomb check.

    Opening reads only the header. Pillow's check at this point would refuse anything over twice
    ``Image.MAX_IMAGE_PIXELS`` itself, with its own limit in the message; leaving it out lets
    _check_size refuse the image first, for the caller's limit, with a size to resize to.
    """
    prefix = data[:16]
    for name in _allowed_formats():
        factory, accept = Image.OPEN[name]
        accepted = accept(prefix) if accept is not None else True
        if not accepted or isinstance(accepted, str):  # a str: the plugin's support is missing
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # not this format after all; Image.open tries the next one too
    raise UnidentifiedImageError("cannot identify image file")


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageDecodeError(f"the image has no pixels ({width}x{height})")
    limit = max_pixels
    if Image.MAX_IMAGE_PIXELS:
        limit = min(limit, 2 * Image.MAX_IMAGE_PIXELS)
    if width * height > limit:
        raise ImageTooLarge(width=width, height=height, limit=limit)


def _exif_upright(image: Image.Image) -> None:
    """Turn `image` upright by its EXIF orientation, in place (no copy when it is upright)."""
    with contextlib.suppress(Exception):
        # Broken EXIF metadata should not reject pixels that decoded fine; keep them as stored.
        ImageOps.exif_transpose(image, in_place=True)


def _composite_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _to_uint8_grey(values: np.ndarray, mode: str) -> np.ndarray:
    values = values.astype(np.float64, copy=False)
    if mode.startswith("I;16"):
        scaled = values / 257.0
    else:
        low, high = float(values.min()), float(values.max())
        if mode == "F" and low >= 0.0 and high <= 1.0:
            scaled = values * 255.0
        elif low >= 0.0 and high <= 255.0:
            scaled = values
        elif low >= 0.0 and high <= 65535.0:
            scaled = values / 257.0
        else:
            # Arbitrary range (signed or 32-bit data): stretch what is there to full contrast.
            scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _too_large_reason(exc: Exception, max_pixels: int) -> str:
    match = _PIXEL_COUNT.search(str(exc))
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    if match:
        return f"image is too large: {match.group(1)} pixels, the limit is {limit}"
    return f"image is too large, the limit is {limit} pixels"


def _unreadable_reason(exc: Exception) -> str:
    detail = str(exc).strip() or type(exc).__name__
    # Pillow names the in-memory buffer in some messages; that is noise for the reader.
    detail = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", detail)
    if isinstance(exc, UnidentifiedImageError):
        return f"not a readable image ({detail})"
    if isinstance(exc, SyntaxError | OSError | EOFError):
        return f"the image file is damaged or truncated ({detail})"
    return f"not a readable image ({type(exc).__name__}: {detail})"
