"""How an image classifier computes: the device settings and the optimizer step on a batch.

On CUDA the model runs channels_last under bf16 autocast (where the GPU supports it) with cuDNN
autotuning and a fused AdamW (see :mod:`workers.ml.optimization`); on the CPU, float32 in the
default layout, so that the same seed gives the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workers.ml.augment import Augmentation
from workers.ml.epoch_sums import Predictions
from workers.ml.image_split import ImageSplit
from workers.ml.loop import StepFn

__all__ = ["Compute", "train_step"]


@dataclass(frozen=True)
class Compute:
    """Where the model computes, and how: on CUDA channels_last, and bf16 autocast if supported."""

    target: torch.device
    memory_format: torch.memory_format
    use_bf16: bool

    @property
    def on_cuda(self) -> bool:
        """Whether the model computes on a CUDA device."""
        return self.target.type == "cuda"

    @classmethod
    def on(cls, target: torch.device) -> Compute:
        """The settings for ``target``; on CUDA this also turns cuDNN autotuning on."""
        on_cuda = target.type == "cuda"
        if on_cuda:
            # Input sizes are fixed for the whole run, so autotuning pays off after a few steps.
            torch.backends.cudnn.benchmark = True
        return cls(
            target=target,
            memory_format=torch.channels_last if on_cuda else torch.contiguous_format,
            use_bf16=on_cuda and torch.cuda.is_bf16_supported(),
        )


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    data: ImageSplit,
    *,
    generator: torch.Generator,
    augmentation: Augmentation,
    class_weight: torch.Tensor | None,
    label_smoothing: float,
    compute: Compute,
) -> StepFn:
    """The optimizer step on a batch of training rows (the loop's hot path)."""
    memory_format, use_bf16 = compute.memory_format, compute.use_bf16

    def step(index: torch.Tensor) -> tuple[torch.Tensor, Predictions]:
        batch, targets = data.take(index)
        inputs = augmentation.apply(batch, generator).contiguous(memory_format=memory_format)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(inputs)
            loss = F.cross_entropy(
                logits.float(),
                targets,
                weight=class_weight,
                label_smoothing=label_smoothing,
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        # Hits are counted by the loop when it reads them (on a GPU, for many steps at once).
        return loss.detach(), Predictions(logits.detach(), targets)

    return step
