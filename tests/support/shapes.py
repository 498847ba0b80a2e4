"""Synthetic labelled images for tests: coloured shapes on noisy backgrounds.

Plain Pillow + numpy (no torch), so end-to-end tests of the portal can build upload archives
without pulling in the ML stack. Each class differs in shape *and* dominant colour, which a
small CNN learns to >90% accuracy within seconds on a CPU at 32x32, while position, size,
background tint and pixel noise vary so the task is not trivial memorisation.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "SHAPE_CLASSES",
    "image_bytes",
    "make_class_zip",
    "make_shape_image",
    "write_class_folders",
]

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle")

# Dominant colour per class; far apart so colour alone nearly separates the classes.
_COLOURS: dict[str, tuple[int, int, int]] = {
    "circle": (210, 40, 40),
    "square": (40, 170, 60),
    "triangle": (40, 70, 210),
}
# Fixed timestamp so the same arguments always produce byte-identical archives.
_ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def make_shape_image(label: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """Draw one RGB ``size`` x ``size`` image of class ``label`` using randomness from ``rng``."""
    if label not in _COLOURS:
        raise ValueError(f"unknown shape class {label!r}; known: {', '.join(SHAPE_CLASSES)}")
    if size < 8:
        raise ValueError("size must be at least 8")
    # Draw at 4x and downsample: antialiased edges look like real photos, not pixel art.
    scale = 4
    canvas = size * scale
    tint = rng.integers(150, 246, size=3)
    image = Image.new("RGB", (canvas, canvas), tuple(int(v) for v in tint))
    draw = ImageDraw.Draw(image)

    extent = rng.uniform(0.45, 0.75) * canvas
    left = rng.uniform(0.05 * canvas, canvas - extent - 0.05 * canvas)
    top = rng.uniform(0.05 * canvas, canvas - extent - 0.05 * canvas)
    box = (left, top, left + extent, top + extent)
    jitter = rng.integers(-25, 26, size=3)
    colour = tuple(
        int(np.clip(c + j, 0, 255)) for c, j in zip(_COLOURS[label], jitter, strict=True)
    )
    if label == "circle":
        draw.ellipse(box, fill=colour)
    elif label == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(
            [(left + extent / 2, top), (left + extent, top + extent), (left, top + extent)],
            fill=colour,
        )

    small = image.resize((size, size), Image.Resampling.LANCZOS)
    noise = rng.normal(0.0, 8.0, size=(size, size, 3))
    pixels = np.clip(np.asarray(small, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    """Encode ``image`` in the Pillow format ``fmt`` ("PNG", "JPEG", ...)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def write_class_folders(
    root: Path,
    *,
    per_class: int = 30,
    seed: int = 0,
    size: int = 32,
    classes: Sequence[str] = SHAPE_CLASSES,
    ext: str = ".png",
) -> dict[str, str]:
    """Write ``root/<class>/<class>_<i><ext>`` files and return {relative posix path: label}.

    The same arguments produce the same pixels as :func:`make_class_zip`.
    """
    fmt = _format_for(ext)
    root = Path(root)
    written: dict[str, str] = {}
    for name, label, image in _generate(per_class=per_class, seed=seed, size=size, classes=classes):
        relative = f"{label}/{name}{ext}"
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image_bytes(image, fmt))
        written[relative] = label
    return written


def make_class_zip(
    *,
    per_class: int = 30,
    seed: int = 0,
    size: int = 32,
    classes: Sequence[str] = SHAPE_CLASSES,
    extra_entries: dict[str, bytes] | None = None,
) -> bytes:
    """Return a zip archive with PNG entries ``<class>/<class>_<i>.png``.

    ``extra_entries`` ({archive name: raw bytes}) are added verbatim after the images, for tests
    of bad input (non-images, nested folders, odd names).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entries = [
            (f"{label}/{name}.png", image_bytes(image, "PNG"))
            for name, label, image in _generate(
                per_class=per_class, seed=seed, size=size, classes=classes
            )
        ]
        entries.extend((extra_entries or {}).items())
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _generate(
    *, per_class: int, seed: int, size: int, classes: Sequence[str]
) -> list[tuple[str, str, Image.Image]]:
    if per_class < 0:
        raise ValueError("per_class must not be negative")
    rng = np.random.default_rng(seed)
    return [
        (f"{label}_{i}", label, make_shape_image(label, rng, size))
        for label in classes
        for i in range(per_class)
    ]


def _format_for(ext: str) -> str:
    try:
        return _FORMATS[ext.lower()]
    except KeyError:
        raise ValueError(f"unsupported extension {ext!r}; use one of {sorted(_FORMATS)}") from None
