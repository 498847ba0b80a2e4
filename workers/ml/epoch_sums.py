"""An epoch's running loss and accuracy, summed per step on the CPU and in batches on a GPU."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["FOLD_EVERY", "EpochSums", "Predictions"]

# On CUDA, per-step losses and predictions are scored in batches of at most this many steps.
FOLD_EVERY = 64


class Predictions(NamedTuple):
    """A batch's logits (N, classes) and targets (N,), for the loop to count hits when it reads.

    A step may return these instead of its number of correct predictions: on a GPU, counting
    them every step costs the host three kernel launches, and the loop only reads the count a
    few times a second.
    """

    logits: torch.Tensor
    targets: torch.Tensor

    def hits(self) -> torch.Tensor:
        """The number of rows whose highest logit is the target's."""
        return (self.logits.argmax(dim=1) == self.targets).sum()


class EpochSums:
    """One epoch's sum of batch loss times batch size, correct predictions and samples.

    On the CPU every step adds at once, exactly as a plain loop would. On a GPU each of those
    additions, and counting a step's hits, is a kernel launch that costs the host tens of
    microseconds, while a small model's whole step is launch-bound (LeptonNet-S at batch 32:
    about 8 ms of host time per step on an H100 machine). There the steps' values queue up and
    are folded in with a few batched operations when read (or every ``FOLD_EVERY`` steps),
    which rounds the loss differently in the last bits only.
    """

    def __init__(self, device: torch.device, *, deferred: bool) -> None:
        self.loss = torch.zeros((), dtype=torch.float32, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0
        self.has_accuracy = False
        self.deferred = deferred
        self._losses: dict[int, list[torch.Tensor]] = {}  # batch size -> batch losses
        self._corrects: list[torch.Tensor] = []
        self._predictions: list[Predictions] = []
        self._pending = 0

    def add(
        self, loss: torch.Tensor, count: int, correct: torch.Tensor | Predictions | None
    ) -> None:
        """Count one batch of ``count`` samples with mean ``loss`` and ``correct`` hits."""
        self.seen += count
        if correct is not None:
            self.has_accuracy = True
        if not self.deferred:
            self.loss += loss * count
            if correct is not None:
                self.correct += correct.hits() if isinstance(correct, Predictions) else correct
            return
        self._losses.setdefault(count, []).append(loss)
        if isinstance(correct, Predictions):
            self._predictions.append(correct)
        elif correct is not None:
            self._corrects.append(correct)
        self._pending += 1
        if self._pending >= FOLD_EVERY:
            self._fold()

    def means(self) -> tuple[float, float | None]:
        """Mean loss and accuracy (None without accuracies) so far; waits for the device."""
        self._fold()
        loss = self.loss.item() / self.seen
        return loss, self.correct.item() / self.seen if self.has_accuracy else None

    def _fold(self) -> None:
        for count, losses in self._losses.items():
            self.loss.add_(torch.stack(losses).sum(), alpha=count)
        if self._corrects:
            self.correct += torch.stack(self._corrects).sum()
        if self._predictions:
            logits, targets = zip(*self._predictions, strict=True)
            self.correct += Predictions(torch.cat(logits), torch.cat(targets)).hits()
        self._losses, self._corrects, self._predictions, self._pending = {}, [], [], 0
