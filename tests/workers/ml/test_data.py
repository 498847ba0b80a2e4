"""Preprocessing shared by training and prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.shapes import SHAPE_CLASSES, write_class_folders
from workers.ml.data import (
    MEAN,
    STD,
    LabeledImage,
    image_to_uint8_tensor,
    load_images,
    normalize,
)
from workers.ml.images import ImageDecodeError, decode_image


def test_image_to_uint8_tensor_shape_and_dtype() -> None:
    image = Image.new("RGB", (50, 20), (10, 20, 30))
    tensor = image_to_uint8_tensor(image, 32)
    assert tensor.dtype == torch.uint8
    assert tensor.shape == (3, 32, 32)
    assert tensor[:, 5, 5].tolist() == [10, 20, 30]


def test_image_to_uint8_tensor_converts_modes() -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert image_to_uint8_tensor(rgba, 8)[:, 0, 0].tolist() == [255, 255, 255]
    assert image_to_uint8_tensor(Image.new("L", (8, 8), 7), 8)[:, 0, 0].tolist() == [7, 7, 7]


def test_load_images_matches_single_image_path(tmp_path: Path) -> None:
    files = write_class_folders(tmp_path, per_class=3, seed=5, size=40)
    labels = list(SHAPE_CLASSES)
    samples = [LabeledImage(tmp_path / rel, labels.index(lab)) for rel, lab in files.items()]
    images, targets = load_images(samples, 32)
    assert images.shape == (9, 3, 32, 32)
    assert images.dtype == torch.uint8
    assert targets.dtype == torch.int64
    assert targets.tolist() == [s.label for s in samples]
    for row, sample in zip(images, samples, strict=True):
        single = image_to_uint8_tensor(decode_image(sample.path.read_bytes()), 32)
        assert torch.equal(row, single)


def test_load_images_empty() -> None:
    images, targets = load_images([], 32)
    assert images.shape == (0, 3, 32, 32)
    assert targets.shape == (0,)


def test_load_images_names_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageDecodeError, match="broken.png"):
        load_images([LabeledImage(bad, 0)], 32)


def test_normalize() -> None:
    batch = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(2, 3, 2, 2)
    out = normalize(batch)
    assert out.dtype == torch.float32
    assert out.shape == (2, 3, 2, 2)
    for channel in range(3):
        low = (0.0 - MEAN[channel]) / STD[channel]
        high = (1.0 - MEAN[channel]) / STD[channel]
        assert out[0, channel, 0, 0].item() == pytest.approx(low, abs=1e-5)
        assert out[0, channel, 0, 1].item() == pytest.approx(high, abs=1e-5)
    single = normalize(batch[0])
    assert single.shape == (3, 2, 2)
    with pytest.raises(TypeError):
        normalize(torch.zeros(1, 3, 2, 2))


def test_mean_std_are_unit_scale() -> None:
    assert np.all((np.array(MEAN) > 0) & (np.array(MEAN) < 1))
    assert np.all((np.array(STD) > 0) & (np.array(STD) < 1))


def test_normalize_first_called_under_inference_mode_still_serves_training() -> None:
    # The constants are cached per device: the first call must not leave inference tensors
    # behind that a later training step (with autograd on) cannot use.
    batch = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8, device="cpu")
    with torch.inference_mode():
        served = normalize(batch)
    weight = torch.ones((), requires_grad=True)
    trained = normalize(batch) * weight
    trained.sum().backward()
    assert weight.grad is not None
    assert torch.equal(trained.detach(), served)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_normalize_on_cuda_matches_the_cpu() -> None:
    batch = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    on_gpu = normalize(batch.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), normalize(batch), rtol=0, atol=1e-6)


def _png(colour: tuple[int, int, int]) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (12, 9), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_load_images_reads_images_packed_in_one_file(tmp_path: Path) -> None:
    red, blue = _png((255, 0, 0)), _png((0, 0, 255))
    pack = tmp_path / "a.pack"
    pack.write_bytes(b"junk" + red + blue)
    samples = [
        LabeledImage(path=pack, label=1, offset=4 + len(red), length=len(blue), name="blue.png"),
        LabeledImage(path=pack, label=0, offset=4, length=len(red), name="red.png"),
    ]
    images, labels = load_images(samples, 8)
    assert labels.tolist() == [1, 0]
    assert images[0, :, 4, 4].tolist() == [0, 0, 255]
    assert images[1, :, 4, 4].tolist() == [255, 0, 0]


def test_a_packed_image_cut_short_is_an_error_naming_it(tmp_path: Path) -> None:
    red = _png((255, 0, 0))
    pack = tmp_path / "a.pack"
    pack.write_bytes(red[:-10])
    sample = LabeledImage(path=pack, label=0, offset=0, length=len(red), name="red.png")
    with pytest.raises(OSError, match="red.png: the file ends before the image does"):
        load_images([sample], 8)
    pack.write_bytes(b"x" * len(red))
    with pytest.raises(ImageDecodeError, match="^red.png: "):
        load_images([sample], 8)
