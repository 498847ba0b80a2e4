"""Training-time augmentation of in-memory image batches, as cheap batched tensor operations.

Batches stay uint8 in memory and on the device; :meth:`Augmentation.apply` turns one into
normalised model input, drawing every random number from a seeded CPU generator so a run is
reproducible on any device and resumable from a checkpoint of that generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from workers.ml.data import _normalize_constants, normalize

__all__ = ["Augmentation"]

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale uses.
_LUMA = (0.299, 0.587, 0.114)
# RandomResizedCrop's default aspect-ratio range.
_LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))


@dataclass(frozen=True)
class Augmentation:
    """Which random changes training images get; all off by default.

    ``flip``: mirror left-right with probability 0.5. ``crop_padding``: shift by up to that
    many pixels each way, uncovered borders filled with the mean colour (a random crop of the
    padded image). ``scale_min``: crop a random region of ``scale_min``..1 of the area (aspect
    3:4 to 4:3) and resize it back, bilinearly (1.0 = off). ``brightness``, ``contrast``,
    ``saturation``: multiply by a random factor in 1 +- the value. ``greyscale_probability``:
    share of images turned grey.
    """

    flip: bool = False
    crop_padding: int = 0
    scale_min: float = 1.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    greyscale_probability: float = 0.0

    @property
    def geometric(self) -> bool:
        """Whether a resampling (shift or scale) is needed."""
        return self.crop_padding > 0 or self.scale_min < 1.0

    @property
    def photometric(self) -> bool:
        """Whether colours change."""
        return (
            self.brightness > 0
            or self.contrast > 0
            or self.saturation > 0
            or self.greyscale_probability > 0
        )

    def apply(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment uint8 ``batch`` (N, 3, H, W) and return normalised float32 input.

        With everything off this is exactly :func:`workers.ml.data.normalize`. The random
        numbers come from ``generator`` (a CPU generator) in a fixed order, only for the
        augmentations that are on.
        """
        n = int(batch.shape[0])
        if self.flip:
            mirror = _on(torch.rand(n, generator=generator) < 0.5, batch)
            batch = torch.where(mirror.view(-1, 1, 1, 1), batch.flip(3), batch)
        if not (self.photometric or self.geometric):
            return normalize(batch)
        x = batch.float().div_(255.0)
        if self.photometric:
            x = self._colour(x, generator)
        x = _normalize_unit(x)
        if self.geometric:
            # After normalising, so zeros padding is the mean colour rather than black.
            x = self._resample(x, generator)
        return x

    def _colour(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = int(x.shape[0])

        def factor(strength: float) -> torch.Tensor:
            draw = 1.0 + strength * (2.0 * torch.rand(n, generator=generator) - 1.0)
            return _on(draw, x).view(-1, 1, 1, 1)

        if self.brightness > 0:
            x = (x * factor(self.brightness)).clamp_(0.0, 1.0)
        if self.contrast > 0:
            mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * factor(self.contrast) + mean).clamp_(0.0, 1.0)
        if self.saturation > 0:
            grey = _grey(x)
            x = ((x - grey) * factor(self.saturation) + grey).clamp_(0.0, 1.0)
        if self.greyscale_probability > 0:
            chosen = _on(torch.rand(n, generator=generator) < self.greyscale_probability, x)
            x = torch.where(chosen.view(-1, 1, 1, 1), _grey(x).expand_as(x), x)
        return x

    def _resample(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = (int(v) for v in x.shape)
        scale_x = torch.ones(n, dtype=torch.float32)
        scale_y = torch.ones(n, dtype=torch.float32)
        centre_x = torch.zeros(n, dtype=torch.float32)
        centre_y = torch.zeros(n, dtype=torch.float32)
        if self.scale_min < 1.0:
            area = self.scale_min + (1.0 - self.scale_min) * torch.rand(n, generator=generator)
            low, high = _LOG_RATIO
            ratio = torch.exp(low + (high - low) * torch.rand(n, generator=generator))
            scale_x = torch.sqrt(area * ratio).clamp_(max=1.0)
            scale_y = torch.sqrt(area / ratio).clamp_(max=1.0)
            # Anywhere the crop still lies inside the image (coordinates span -1..1).
            centre_x = (2.0 * torch.rand(n, generator=generator) - 1.0) * (1.0 - scale_x)
            centre_y = (2.0 * torch.rand(n, generator=generator) - 1.0) * (1.0 - scale_y)
        if self.crop_padding > 0:
            p = self.crop_padding
            shift = torch.randint(-p, p + 1, (n, 2), generator=generator).float()
            # Whole pixels: with align_corners=False these land on pixel centres, so a pure
            # shift copies pixels exactly instead of blurring them.
            centre_x = centre_x + 2.0 * shift[:, 0] / width
            centre_y = centre_y + 2.0 * shift[:, 1] / height
        theta = torch.zeros(n, 2, 3, dtype=torch.float32)
        theta[:, 0, 0], theta[:, 0, 2] = scale_x, centre_x
        theta[:, 1, 1], theta[:, 1, 2] = scale_y, centre_y
        grid = F.affine_grid(_on(theta, x), [n, 3, height, width], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _on(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device, non_blocking=True)


def _grey(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b


def _normalize_unit(x: torch.Tensor) -> torch.Tensor:
    """Like :func:`workers.ml.data.normalize`, for float images in 0..1."""
    scale, shift = _normalize_constants(x.device, 1.0)
    return torch.addcmul(shift, x, scale)
