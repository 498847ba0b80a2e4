"""What the epoch loop tells its caller: progress while it runs, a summary per finished epoch,
the outcome at the end, and :class:`TrainingCancelled` when it was asked to stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["EpochResult", "LoopOutcome", "Progress", "TrainingCancelled"]


class TrainingCancelled(Exception):
    """Raised by training when ``should_stop`` returned True."""


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running training job, passed to ``on_progress``.

    ``phase`` is "train", "evaluate" or "done"; ``epoch`` is 1-based; ``step`` counts optimizer
    steps so far out of ``total_steps``; ``fraction`` is overall completion in 0..1.
    ``train_loss``/``train_accuracy`` are running means over the current epoch; ``val_loss``/
    ``val_accuracy`` belong to the last finished epoch (None before one finished, or without a
    validation split). Accuracies are None for regression. On CUDA the running means may lag a
    few steps behind ``step``, because reading them every step would stall the GPU.
    ``images_per_second`` counts training samples (images, or table rows for regression).
    ``eta_seconds`` estimates the time left for the remaining steps (None until one step ran).
    """

    phase: str
    epoch: int
    epochs: int
    step: int
    total_steps: int
    fraction: float
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    images_per_second: float
    eta_seconds: float | None = None


@dataclass(frozen=True)
class EpochResult:
    """Summary of one finished epoch (``train_accuracy``/``val_accuracy`` None for regression).

    ``seconds`` is wall time including validation; the other fields are deterministic.
    """

    epoch: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass
class LoopOutcome:
    """What :func:`~workers.ml.loop.run_epochs` leaves; the model holds the weights to keep."""

    history: list[EpochResult]
    step: int
    total_steps: int
    samples: int
    train_seconds: float
    best_epoch: int | None = None
    stopped_early: bool = False
    resumed_from_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def samples_per_second(self) -> float:
        """Training throughput over optimizer passes only (no validation, no checkpoints)."""
        return self.samples / self.train_seconds if self.train_seconds > 0 else 0.0

    @property
    def last(self) -> EpochResult | None:
        """The last finished epoch."""
        return self.history[-1] if self.history else None
