"""Optimizers, learning-rate schedules and loss weights chosen by the training knobs."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OPTIMIZERS", "SCHEDULES", "balanced_class_weights", "build_optimizer", "build_schedule"]

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine")
SGD_MOMENTUM = 0.9


def build_optimizer(
    model: nn.Module, *, name: str, learning_rate: float, weight_decay: float, fused: bool = False
) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum 0.9; weight decay on weight matrices only.

    ``fused`` picks the single-kernel implementation (CUDA).
    """
    # Decaying normalisation scales and biases only fights the normalisation; decay weights only.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # None, not False: the optimizers' own default, which lets them pick foreach.
    fused_or_default = True if fused else None
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=learning_rate, fused=fused_or_default)
    if name == "sgd":
        return torch.optim.SGD(
            groups, lr=learning_rate, momentum=SGD_MOMENTUM, nesterov=True, fused=fused_or_default
        )
    raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")


def build_schedule(
    optimizer: torch.optim.Optimizer, *, name: str, learning_rate: float, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule over ``total_steps``.

    "onecycle": warm up to ``learning_rate`` over the first 30% of steps, then anneal to near
    zero (the classic super-convergence schedule). "cosine": start at ``learning_rate`` and
    follow a half cosine down to zero.
    """
    total_steps = max(1, total_steps)
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=learning_rate, total_steps=total_steps
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    raise ValueError(f"unknown schedule {name!r}; allowed: {', '.join(SCHEDULES)}")


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency loss weights: ``n / (k * count_c)`` for the k classes present.

    Every present class then contributes equally to the loss in total; a class absent from
    ``labels`` gets weight 0 (it is never a target). Returns float32 on ``labels``' device.
    """
    counts = torch.bincount(labels.reshape(-1), minlength=num_classes).to(torch.float32)
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float32, device=counts.device)
    weights[present] = labels.numel() / (int(present.sum()) * counts[present])
    return weights
