"""Image preprocessing shared by training, evaluation and prediction.

:func:`image_to_uint8_tensor` followed by :func:`normalize` is the only path from a picture to
model input anywhere in the project, so a model is always evaluated and served on exactly the
pixels it was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from workers.ml.images import ImageDecodeError, decode_image, to_rgb

__all__ = [
    "MEAN",
    "STD",
    "LabeledImage",
    "image_to_uint8_tensor",
    "load_images",
    "normalize",
]

# ImageNet statistics: a neutral, well-known choice that keeps inputs roughly zero-centred.
MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Decoding releases the GIL inside Pillow, so a few threads overlap file IO and decoding.
_MAX_LOAD_THREADS = 4


@dataclass(frozen=True)
class LabeledImage:
    """An image file on disk and the index of its label.

    With an ``offset``, the image is the ``length`` bytes at that offset of the file (a pack of
    several images); ``name``, when given, is what error messages call it.
    """

    path: Path
    label: int
    offset: int | None = None
    length: int | None = None
    name: str = ""

    @property
    def display_name(self) -> str:
        return self.name or Path(self.path).name

    def read_bytes(self) -> bytes:
        """The image's bytes; OSError if the file is missing or ends before the image does."""
        if self.offset is None:
            return Path(self.path).read_bytes()
        length = self.length or 0
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(length)
        if len(data) != length:
            raise OSError(f"{self.display_name}: the file ends before the image does")
        return data


def image_to_uint8_tensor(image: Image.Image, input_size: int) -> torch.Tensor:
    """Resize ``image`` to ``input_size`` x ``input_size`` and return it as uint8 (3, H, W).

    The aspect ratio is not kept (a plain square resize), with Pillow's antialiased bilinear
    filter. Non-RGB images are converted with :func:`workers.ml.images.to_rgb` first.
    """
    if input_size < 1:
        raise ValueError("input_size must be at least 1")
    return torch.from_numpy(_resized_chw(image, input_size))


def load_images(
    samples: Sequence[LabeledImage], input_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode and resize every sample into memory.

    Returns:
        ``(images, labels)``: uint8 (N, 3, input_size, input_size) and int64 (N,), in the order
        of ``samples``. An empty ``samples`` gives tensors with N = 0.

    Raises:
        ImageDecodeError: naming the file, if one of them is not a readable image.
        OSError: if a file cannot be read.
    """
    if input_size < 1:
        raise ValueError("input_size must be at least 1")
    images = np.empty((len(samples), 3, input_size, input_size), dtype=np.uint8)
    labels = torch.tensor([int(s.label) for s in samples], dtype=torch.int64)
    if not samples:
        return torch.from_numpy(images), labels

    def load_one(index: int) -> None:
        sample = samples[index]
        try:
            image = decode_image(sample.read_bytes())
        except ImageDecodeError as exc:
            raise ImageDecodeError(f"{sample.display_name}: {exc.reason}") from exc
        images[index] = _resized_chw(image, input_size)

    workers = max(1, min(_MAX_LOAD_THREADS, os.cpu_count() or 1, len(samples)))
    if workers == 1:
        for index in range(len(samples)):
            load_one(index)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # list() re-raises the first worker exception here, in sample order.
            list(pool.map(load_one, range(len(samples))))
    return torch.from_numpy(images), labels


def normalize(batch_uint8: torch.Tensor) -> torch.Tensor:
    """Turn uint8 images ((N, 3, H, W) or (3, H, W)) into float32 model input on their device."""
    if batch_uint8.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 tensor, got {batch_uint8.dtype}")
    scale, shift = _normalize_constants(batch_uint8.device, 255.0)
    return torch.addcmul(shift, batch_uint8.float(), scale)


# (device, pixel range) -> (scale, shift), each (3, 1, 1) float32. Building them on a GPU is a
# copy from host memory that waits for all queued work, so every training step would stall the
# device if they were built per call.
_NORMALIZE_CONSTANTS: dict[tuple[torch.device, float], tuple[torch.Tensor, torch.Tensor]] = {}


def _normalize_constants(
    device: torch.device, pixel_max: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x * scale + shift`` maps pixels in 0..``pixel_max`` to normalised model input."""
    key = (device, pixel_max)
    constants = _NORMALIZE_CONSTANTS.get(key)
    if constants is None:
        # Plain tensors even when first asked for under inference_mode, so training may use them.
        with torch.inference_mode(False):
            # Folding the range into the statistics turns three elementwise passes into one
            # multiply-add.
            scale = torch.tensor([1.0 / (pixel_max * s) for s in STD], device=device)
            shift = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)], device=device)
            constants = (scale.view(3, 1, 1), shift.view(3, 1, 1))
        _NORMALIZE_CONSTANTS[key] = constants
    return constants


def _resized_chw(image: Image.Image, input_size: int) -> np.ndarray:
    # The one resize used everywhere; load_images calls it too instead of its own variant.
    rgb = image if image.mode == "RGB" else to_rgb(image)
    if rgb.size != (input_size, input_size):
        rgb = rgb.resize((input_size, input_size), Image.Resampling.BILINEAR)
    # np.array (not asarray) gives a writable copy, which torch.from_numpy requires.
    return np.ascontiguousarray(np.array(rgb, dtype=np.uint8).transpose(2, 0, 1))
