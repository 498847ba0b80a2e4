"""A data split held where the model computes, and a model's scores on it.

Data sets here are small (hundreds to a few thousand images), so every split is decoded once,
held in memory as uint8 and, when it fits, moved to the GPU once; each training step then only
indexes, augments and normalises a batch on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workers.ml.data import normalize
from workers.ml.device import fits_on_device, to_device

__all__ = ["HeldSplits", "ImageSplit", "evaluate_split"]


class ImageSplit:
    """One split's uint8 images and int64 labels, on the GPU when they fit.

    Otherwise the images stay in pinned CPU memory and each batch is copied over on its own.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, target: torch.device, on_device: bool
    ) -> None:
        self.target = target
        self.labels_cpu = labels
        self.on_device = on_device or target.type == "cpu"
        if self.on_device:
            self.images = to_device(images, target)
            self.labels = to_device(labels, target)
        else:
            self.images = images.pin_memory()
            self.labels = labels

    def __len__(self) -> int:
        return int(self.labels_cpu.numel())

    @property
    def index_device(self) -> torch.device:
        """Where batch indices must live: with the images."""
        return self.target if self.on_device else torch.device("cpu")

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels at ``index``, on the compute device."""
        batch = self.images.index_select(0, index)
        targets = self.labels.index_select(0, index)
        if not self.on_device:
            batch = to_device(batch, self.target)
            targets = to_device(targets, self.target)
        return batch, targets

    def slice(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``start:stop`` on the compute device."""
        batch, targets = self.images[start:stop], self.labels[start:stop]
        if not self.on_device:
            batch, targets = to_device(batch, self.target), to_device(targets, self.target)
        return batch, targets


@dataclass(frozen=True)
class HeldSplits:
    """The decoded splits where the model computes, and the one the final evaluation uses:
    "test", else "validation", else "train".
    """

    train: ImageSplit
    validation: ImageSplit
    evaluation: ImageSplit
    evaluation_split: str

    @classmethod
    def hold(
        cls,
        train: tuple[torch.Tensor, torch.Tensor],
        validation: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor],
        target: torch.device,
        *,
        has_validation: bool,
        has_test: bool,
    ) -> HeldSplits:
        """Move the (images, labels) of each split to ``target`` if all of them fit there."""
        size = sum(images.numel() for images, _ in (train, validation, test))
        keep_on_device = fits_on_device(size, target)
        train_data = ImageSplit(*train, target, keep_on_device)
        val_data = ImageSplit(*validation, target, keep_on_device)
        if has_test:
            return cls(train_data, val_data, ImageSplit(*test, target, keep_on_device), "test")
        if has_validation:
            return cls(train_data, val_data, val_data, "validation")
        return cls(train_data, val_data, train_data, "train")


def evaluate_split(
    model: nn.Module,
    data: ImageSplit,
    *,
    batch_size: int,
    memory_format: torch.memory_format,
) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """Mean loss, accuracy, CPU predictions and their probabilities.

    fp32 like the Predictor, so they agree; the loss is plain cross-entropy (no class weights,
    no smoothing), so runs with different knobs compare on one scale.
    """
    model.eval()
    predictions: list[torch.Tensor] = []
    confidences: list[torch.Tensor] = []
    count = len(data)
    with torch.inference_mode():
        loss_sum = torch.zeros((), dtype=torch.float32, device=data.target)
        for start in range(0, count, batch_size):
            batch, targets = data.slice(start, start + batch_size)
            logits = model(normalize(batch).contiguous(memory_format=memory_format)).float()
            loss_sum += F.cross_entropy(logits, targets, reduction="sum")
            confidence, predicted = torch.softmax(logits, dim=1).max(dim=1)
            predictions.append(predicted)
            confidences.append(confidence)
        mean_loss = loss_sum.item() / count
    predicted = torch.cat(predictions).cpu()
    accuracy = float((predicted == data.labels_cpu).sum().item()) / count
    return mean_loss, accuracy, predicted, torch.cat(confidences).cpu()
