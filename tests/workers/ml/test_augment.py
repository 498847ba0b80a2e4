"""Batch augmentation: exact where it should be, seeded, and cheap tensor ops on uint8 input."""

from __future__ import annotations

import pytest
import torch

from workers.ml.augment import Augmentation
from workers.ml.data import MEAN, STD, normalize


def _batch(n: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)


def _apply(augmentation: Augmentation, batch: torch.Tensor, seed: int = 1) -> torch.Tensor:
    return augmentation.apply(batch, torch.Generator().manual_seed(seed))


def _unnormalise(x: torch.Tensor) -> torch.Tensor:
    """Back to 0..1 colours: x * std + mean per channel."""
    return x * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)


def test_nothing_on_is_plain_normalisation() -> None:
    batch = _batch()
    assert torch.equal(_apply(Augmentation(), batch), normalize(batch))


def test_flip_mirrors_some_images_exactly() -> None:
    batch = _batch(n=16)
    out = _apply(Augmentation(flip=True), batch)
    plain, mirrored = normalize(batch), normalize(batch.flip(3))
    flipped = [bool(torch.equal(o, m)) for o, m in zip(out, mirrored, strict=True)]
    kept = [bool(torch.equal(o, p)) for o, p in zip(out, plain, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < 16


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_crop_padding_shifts_whole_pixels(seed: int) -> None:
    batch = _batch(n=4, size=12, seed=seed)
    out = _apply(Augmentation(crop_padding=3), batch, seed=seed)
    plain = normalize(batch)
    for image, original in zip(out, plain, strict=True):
        # Find the shift that reproduces the image: the overlap matches the original exactly.
        matches = []
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                shifted = image[:, max(0, -dy) : 12 - max(0, dy), max(0, -dx) : 12 - max(0, dx)]
                source = original[:, max(0, dy) : 12 + min(0, dy), max(0, dx) : 12 + min(0, dx)]
                if torch.allclose(shifted, source, atol=1e-4):
                    matches.append((dy, dx))
        assert len(matches) == 1
        dy, dx = matches[0]
        # Uncovered borders hold the mean colour, which normalises to zero.
        borders = [
            image[:, -dy:, :] if dy > 0 else image[:, :-dy, :],
            image[:, :, -dx:] if dx > 0 else image[:, :, :-dx],
        ]
        for border in borders:
            assert torch.allclose(border, torch.zeros_like(border), atol=1e-4)


def test_same_seed_same_output_other_seed_other_output() -> None:
    augmentation = Augmentation(
        flip=True,
        crop_padding=2,
        scale_min=0.5,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        greyscale_probability=0.3,
    )
    batch = _batch()
    first = _apply(augmentation, batch, seed=7)
    assert torch.equal(first, _apply(augmentation, batch, seed=7))
    assert not torch.equal(first, _apply(augmentation, batch, seed=8))
    assert first.dtype == torch.float32 and first.shape == batch.shape
    assert torch.isfinite(first).all()


def test_greyscale_probability_one_makes_channels_equal_before_normalising() -> None:
    unit = _unnormalise(_apply(Augmentation(greyscale_probability=1.0), _batch()))
    assert torch.allclose(unit[:, 0], unit[:, 1], atol=1e-5)
    assert torch.allclose(unit[:, 1], unit[:, 2], atol=1e-5)


def test_brightness_scales_every_pixel_of_an_image_by_one_factor() -> None:
    batch = torch.full((6, 3, 4, 4), 100, dtype=torch.uint8)
    unit = _unnormalise(_apply(Augmentation(brightness=0.5), batch))
    factors = unit.reshape(6, -1) / (100 / 255)
    assert torch.allclose(factors, factors[:, :1].expand_as(factors), atol=1e-4)
    assert ((factors[:, 0] >= 0.5 - 1e-4) & (factors[:, 0] <= 1.5 + 1e-4)).all()
    assert factors[:, 0].std() > 0


def test_scale_zooms_in() -> None:
    # A checkerboard of 1-pixel squares blurs when a smaller crop is stretched over the image.
    board = ((torch.arange(16).view(-1, 1) + torch.arange(16)) % 2 * 255).to(torch.uint8)
    batch = board.expand(4, 3, 16, 16).contiguous()
    out = _apply(Augmentation(scale_min=0.25), batch)
    plain = normalize(batch)
    assert (out.std(dim=(1, 2, 3)) < plain.std(dim=(1, 2, 3))).all()
