"""The epoch loop shared by image and tabular training.

It owns everything around the optimizer step that both trainers need and that must behave the
same: shuffling, cancellation before every step, progress after every step, validation and
early stopping after every epoch, checkpoints after every epoch, and resuming from one. A
trainer supplies the step (forward, loss, backward, update) and the validation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from workers.ml.resume import capture_rng, restore_rng, write_checkpoint

__all__ = [
    "EpochResult",
    "LoopOutcome",
    "Predictions",
    "Progress",
    "TrainingCancelled",
    "run_epochs",
    "steps_per_epoch",
]

# On CUDA, reading the running loss forces a device sync; refresh it at most this often.
_CUDA_STATS_INTERVAL_S = 0.5
# On CUDA, per-step losses and predictions are scored in batches of at most this many steps.
_FOLD_EVERY = 64


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


#: ``step(index)`` trains on the rows ``index`` and returns the batch's mean loss and, for
#: classifiers, its number of correct predictions or its :class:`Predictions` (all detached,
#: on any device).
StepFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | Predictions | None]]
#: ``validate()`` returns (mean loss, accuracy or None) on the validation split.
ValidateFn = Callable[[], tuple[float, float | None]]


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
    """What :func:`run_epochs` leaves behind; the model holds the weights to keep."""

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


_HISTORY_FIELDS = tuple(f.name for f in fields(EpochResult))


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps in one epoch; see :func:`_epoch_rows` for the one row that may sit out."""
    return math.ceil(_epoch_rows(n_train, batch_size) / batch_size)


def _epoch_rows(n_train: int, batch_size: int) -> int:
    # A last batch of a single sample is skipped: BatchNorm cannot normalise one value per
    # channel (ResNet and MobileNet reach 1x1 feature maps at small sizes). The shuffle puts a
    # different sample there every epoch.
    if n_train > 1 and n_train % batch_size == 1:
        return n_train - 1
    return n_train


def run_epochs(
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    n_train: int,
    batch_size: int,
    epochs: int,
    step: StepFn,
    validate: ValidateFn | None,
    patience: int,
    device: torch.device,
    index_device: torch.device,
    checkpoint_path: Path,
    identity: dict[str, Any],
    restored: dict[str, Any] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> LoopOutcome:
    """Train for up to ``epochs`` epochs of shuffled batches of ``batch_size`` rows.

    Rows are shuffled every epoch with ``generator`` (a CPU generator; ``step`` may draw from
    it too) and handed to ``step`` as an index tensor on ``index_device`` (where the training
    data lies); ``device`` is where the model computes. ``should_stop`` is
    checked before every step (:class:`TrainingCancelled`); ``on_progress`` is called after
    every step and at the end of every epoch, after its checkpoint is written.

    Early stopping (``patience`` > 0 and a ``validate``): training stops once the validation
    loss has not improved for ``patience`` epochs in a row, and the weights of the epoch with
    the lowest validation loss are loaded back into ``model`` at the end.

    After every epoch a checkpoint goes to ``checkpoint_path`` (``identity`` inside, to refuse
    resuming another run) and ``on_checkpoint(checkpoint_path)`` is called. ``restored`` is a
    checkpoint read by :func:`workers.ml.resume.read_checkpoint`: the loop then continues after
    its last epoch, with every RNG as it was, or skips straight to the end if it was the last.
    """
    on_cuda = device.type == "cuda"
    per_epoch = steps_per_epoch(n_train, batch_size)
    rows = _epoch_rows(n_train, batch_size)
    total_steps = per_epoch * epochs
    outcome = LoopOutcome(history=[], step=0, total_steps=total_steps, samples=0, train_seconds=0)
    best_loss: float | None = None
    bad_epochs = 0
    finished = False
    if restored is not None:
        model.load_state_dict(restored["model"])
        optimizer.load_state_dict(restored["optimizer"])
        scheduler.load_state_dict(restored["scheduler"])
        restore_rng(restored["rng"], generator)
        outcome.history = _history_from_columns(restored["history"])
        outcome.step = int(restored["step"])
        outcome.samples = int(restored["samples"])
        outcome.train_seconds = float(restored["train_seconds"])
        outcome.resumed_from_epoch = len(outcome.history)
        outcome.stopped_early = bool(restored["stopped_early"])
        finished = bool(restored["finished"])
        best = restored["best"]
        best_loss, bad_epochs = best["loss"], int(best["bad_epochs"])
        outcome.best_epoch = best["epoch"]
        outcome.best_state = best["state"]

    def val_scores() -> tuple[float | None, float | None]:
        last = outcome.last
        return (None, None) if last is None else (last.val_loss, last.val_accuracy)

    def report(progress: Progress) -> None:
        if on_progress is not None:
            on_progress(progress)

    attempt_started = time.perf_counter()
    attempt_steps = 0

    def eta() -> float | None:
        if attempt_steps == 0:
            return None
        per_step = (time.perf_counter() - attempt_started) / attempt_steps
        return per_step * (total_steps - outcome.step)

    if outcome.history and not finished:
        # Tell the caller at once where the resumed run stands.
        last = outcome.history[-1]
        report(
            Progress(
                phase="train",
                epoch=last.epoch,
                epochs=epochs,
                step=outcome.step,
                total_steps=total_steps,
                fraction=outcome.step / total_steps,
                train_loss=last.train_loss,
                train_accuracy=last.train_accuracy,
                val_loss=last.val_loss,
                val_accuracy=last.val_accuracy,
                images_per_second=outcome.samples_per_second,
            )
        )

    first_epoch = len(outcome.history) + 1
    for epoch in range(first_epoch, epochs + 1):
        if finished:
            break
        model.train()
        epoch_started = time.perf_counter()
        order = torch.randperm(n_train, generator=generator)[:rows].to(index_device)
        sums = _EpochSums(device, deferred=on_cuda)
        running_loss: float | None = None
        running_accuracy: float | None = None
        stats_read_at = -math.inf
        val_loss, val_accuracy = val_scores()

        for start in range(0, rows, batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(
                    f"training was cancelled at step {outcome.step} of {total_steps}"
                )
            index = order[start : start + batch_size]
            loss, correct = step(index)
            count = int(index.numel())
            outcome.step += 1
            attempt_steps += 1
            outcome.samples += count
            sums.add(loss, count, correct)

            if on_progress is not None:
                now = time.perf_counter()
                last_of_epoch = start + batch_size >= rows
                if not on_cuda or last_of_epoch or now - stats_read_at >= _CUDA_STATS_INTERVAL_S:
                    running_loss, running_accuracy = sums.means()
                    stats_read_at = now
                elapsed = outcome.train_seconds + (now - epoch_started)
                on_progress(
                    Progress(
                        phase="train",
                        epoch=epoch,
                        epochs=epochs,
                        step=outcome.step,
                        total_steps=total_steps,
                        fraction=outcome.step / total_steps,
                        train_loss=running_loss,
                        train_accuracy=running_accuracy,
                        val_loss=val_loss,
                        val_accuracy=val_accuracy,
                        images_per_second=outcome.samples / elapsed if elapsed > 0 else 0.0,
                        eta_seconds=eta(),
                    )
                )

        # .item() also waits for queued GPU work, so the epoch time below is real.
        epoch_loss, epoch_accuracy = sums.means()
        outcome.train_seconds += time.perf_counter() - epoch_started

        if validate is not None:
            val_loss, val_accuracy = validate()
            if patience > 0:
                if best_loss is None or val_loss < best_loss:
                    best_loss, bad_epochs, outcome.best_epoch = val_loss, 0, epoch
                    outcome.best_state = {
                        key: value.detach().clone() for key, value in model.state_dict().items()
                    }
                else:
                    bad_epochs += 1
                    outcome.stopped_early = bad_epochs >= patience and epoch < epochs
        outcome.history.append(
            EpochResult(
                epoch=epoch,
                train_loss=epoch_loss,
                train_accuracy=epoch_accuracy,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                seconds=time.perf_counter() - epoch_started,
            )
        )
        finished = outcome.stopped_early or epoch == epochs
        write_checkpoint(
            {
                "identity": identity,
                "epoch": epoch,
                "step": outcome.step,
                "samples": outcome.samples,
                "train_seconds": outcome.train_seconds,
                "finished": finished,
                "stopped_early": outcome.stopped_early,
                "history": _history_columns(outcome.history),
                "model": _cpu(model.state_dict()),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "best": {
                    "loss": best_loss,
                    "epoch": outcome.best_epoch,
                    "bad_epochs": bad_epochs,
                    "state": None if outcome.best_state is None else _cpu(outcome.best_state),
                },
                "rng": capture_rng(generator),
            },
            checkpoint_path,
        )
        if on_checkpoint is not None:
            on_checkpoint(checkpoint_path)
        report(
            Progress(
                phase="train",
                epoch=epoch,
                epochs=epochs,
                step=outcome.step,
                total_steps=total_steps,
                fraction=outcome.step / total_steps,
                train_loss=epoch_loss,
                train_accuracy=epoch_accuracy,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                images_per_second=outcome.samples_per_second,
                eta_seconds=0.0 if finished else eta(),
            )
        )

    if patience > 0 and outcome.best_state is not None:
        model.load_state_dict(outcome.best_state)
    return outcome


class _EpochSums:
    """One epoch's sum of batch loss times batch size, correct predictions and samples.

    On the CPU every step adds at once, exactly as a plain loop would. On a GPU each of those
    additions, and counting a step's hits, is a kernel launch that costs the host tens of
    microseconds, while a small model's whole step is launch-bound (LeptonNet-S at batch 32:
    about 8 ms of host time per step on an H100 machine). There the steps' values queue up and
    are folded in with a few batched operations when read (or every ``_FOLD_EVERY`` steps),
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
        if self._pending >= _FOLD_EVERY:
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


def _history_columns(history: list[EpochResult]) -> dict[str, torch.Tensor]:
    # One float64 tensor per field (None as NaN; float64 holds Python floats exactly): a
    # thousand-epoch tabular run would otherwise pickle thousands of objects every epoch.
    return {
        name: torch.tensor(
            [math.nan if value is None else value for value in (getattr(e, name) for e in history)],
            dtype=torch.float64,
        )
        for name in _HISTORY_FIELDS
    }


def _history_from_columns(columns: dict[str, torch.Tensor]) -> list[EpochResult]:
    values = {name: columns[name].tolist() for name in _HISTORY_FIELDS}
    return [
        EpochResult(
            epoch=int(values["epoch"][i]),
            train_loss=values["train_loss"][i],
            train_accuracy=_optional(values["train_accuracy"][i]),
            val_loss=_optional(values["val_loss"][i]),
            val_accuracy=_optional(values["val_accuracy"][i]),
            seconds=values["seconds"][i],
        )
        for i in range(len(values["epoch"]))
    ]


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu") for key, value in state.items()}
