"""A split held where the model computes: on the GPU when it fits, else pinned on the host."""

from __future__ import annotations

import pytest
import torch

from workers.ml.image_split import ImageSplit


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_data_too_large_for_the_gpu_stays_pinned_on_the_host() -> None:
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(10)
    device = torch.device("cuda")
    split = ImageSplit(images, labels, device, on_device=False)
    assert split.images.is_pinned() and split.index_device.type == "cpu"
    batch, targets = split.take(torch.tensor([3, 1]))
    assert batch.device.type == "cuda" and torch.equal(batch.cpu(), images[[3, 1]])
    assert targets.tolist() == [3, 1]
    batch, targets = split.slice(8, 10)
    assert torch.equal(batch.cpu(), images[8:10]) and targets.device.type == "cuda"
