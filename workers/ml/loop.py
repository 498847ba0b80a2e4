"""The epoch loop shared by image and tabular training.

It owns everything around the optimizer step that both trainers need and that must behave the
same: shuffling, cancellation before every step, progress after every step, validation and
early stopping after every epoch, checkpoints after every epoch, and resuming from one. A
trainer supplies the step (forward, loss, backward, update) and the validation. What the loop
reports lives in :mod:`workers.ml.loop_results`, its running sums in
:mod:`workers.ml.epoch_sums` and its checkpoint payload in :mod:`workers.ml.loop_checkpoint`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workers.ml.epoch_sums import EpochSums, Predictions
from workers.ml.loop_checkpoint import restore_loop_checkpoint, save_loop_checkpoint
from workers.ml.loop_results import EpochResult, LoopOutcome, Progress, TrainingCancelled

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

#: ``step(index)`` trains on the rows ``index`` and returns the batch's mean loss and, for
#: classifiers, its number of correct predictions or its :class:`Predictions` (all detached,
#: on any device).
StepFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | Predictions | None]]
#: ``validate()`` returns (mean loss, accuracy or None) on the validation split.
ValidateFn = Callable[[], tuple[float, float | None]]


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
    loop = _EpochLoop(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        generator=generator,
        n_train=n_train,
        batch_size=batch_size,
        epochs=epochs,
        step=step,
        validate=validate,
        patience=patience,
        device=device,
        index_device=index_device,
        checkpoint_path=checkpoint_path,
        identity=identity,
        on_progress=on_progress,
        should_stop=should_stop,
        on_checkpoint=on_checkpoint,
    )
    return loop.run(restored)


def _eta(attempt_started: float, attempt_steps: int, steps_left: int) -> float | None:
    """Seconds left at this attempt's pace so far (None before its first step)."""
    if attempt_steps == 0:
        return None
    per_step = (time.perf_counter() - attempt_started) / attempt_steps
    return per_step * steps_left


class _EpochLoop:
    """One call of :func:`run_epochs`: its settings, the state it carries from epoch to epoch
    (and through a checkpoint), and the steps of an epoch.
    """

    def __init__(
        self,
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
        on_progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
        on_checkpoint: Callable[[Path], None] | None,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.generator = generator
        self.n_train, self.batch_size, self.epochs = n_train, batch_size, epochs
        self.step, self.validate, self.patience = step, validate, patience
        self.device, self.index_device = device, index_device
        self.on_cuda = device.type == "cuda"
        self.checkpoint_path, self.identity = checkpoint_path, identity
        self.on_progress, self.should_stop = on_progress, should_stop
        self.on_checkpoint = on_checkpoint
        self.rows = _epoch_rows(n_train, batch_size)
        self.total_steps = steps_per_epoch(n_train, batch_size) * epochs
        self.outcome = LoopOutcome(
            history=[], step=0, total_steps=self.total_steps, samples=0, train_seconds=0
        )
        # Early stopping: the lowest validation loss so far and the epochs since it.
        self.best_loss: float | None = None
        self.bad_epochs = 0
        self.finished = False
        # This attempt (a resumed run's steps before it do not count towards its pace).
        self.attempt_started = 0.0
        self.attempt_steps = 0

    def run(self, restored: dict[str, Any] | None) -> LoopOutcome:
        """Train the epochs left after ``restored`` (all without one); see :func:`run_epochs`."""
        outcome = self.outcome
        if restored is not None:
            self.finished, self.best_loss, self.bad_epochs = restore_loop_checkpoint(
                restored,
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                generator=self.generator,
                outcome=outcome,
            )
        self.attempt_started = time.perf_counter()
        last = outcome.last
        if last is not None and not self.finished:
            # Tell the caller at once where the resumed run stands.
            self._report_epoch(last, eta=None)
        for epoch in range(len(outcome.history) + 1, self.epochs + 1):
            if self.finished:
                break
            self._train_epoch(epoch)
        if self.patience > 0 and outcome.best_state is not None:
            self.model.load_state_dict(outcome.best_state)
        return outcome

    def _train_epoch(self, epoch: int) -> None:
        self.model.train()
        epoch_started = time.perf_counter()
        order = torch.randperm(self.n_train, generator=self.generator)[: self.rows].to(
            self.index_device
        )
        sums = EpochSums(self.device, deferred=self.on_cuda)
        last = self.outcome.last
        val_loss, val_accuracy = (
            (None, None) if last is None else (last.val_loss, last.val_accuracy)
        )
        self._steps(epoch, order, sums, epoch_started, val_loss, val_accuracy)
        # .item() also waits for queued GPU work, so the epoch time below is real.
        train_loss, train_accuracy = sums.means()
        self.outcome.train_seconds += time.perf_counter() - epoch_started
        if self.validate is not None:
            val_loss, val_accuracy = self.validate()
            if self.patience > 0:
                self._track_best(epoch, val_loss)
        result = EpochResult(
            epoch=epoch,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            seconds=time.perf_counter() - epoch_started,
        )
        self.outcome.history.append(result)
        self.finished = self.outcome.stopped_early or epoch == self.epochs
        self._save_checkpoint(epoch)
        self._report_epoch(result, eta=0.0 if self.finished else self._eta())

    def _steps(
        self,
        epoch: int,
        order: torch.Tensor,
        sums: EpochSums,
        epoch_started: float,
        val_loss: float | None,
        val_accuracy: float | None,
    ) -> None:
        # The hot path: this body runs once per optimizer step, so it reads locals only and
        # calls nothing it does not need.
        outcome, step = self.outcome, self.step
        should_stop, on_progress = self.should_stop, self.on_progress
        rows, batch_size, on_cuda = self.rows, self.batch_size, self.on_cuda
        epochs, total_steps = self.epochs, self.total_steps
        attempt_started, attempt_steps = self.attempt_started, self.attempt_steps
        running_loss: float | None = None
        running_accuracy: float | None = None
        stats_read_at = -math.inf
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
                        eta_seconds=_eta(
                            attempt_started, attempt_steps, total_steps - outcome.step
                        ),
                    )
                )
        self.attempt_steps = attempt_steps

    def _track_best(self, epoch: int, val_loss: float) -> None:
        outcome = self.outcome
        if self.best_loss is None or val_loss < self.best_loss:
            self.best_loss, self.bad_epochs, outcome.best_epoch = val_loss, 0, epoch
            outcome.best_state = {
                key: value.detach().clone() for key, value in self.model.state_dict().items()
            }
        else:
            self.bad_epochs += 1
            outcome.stopped_early = self.bad_epochs >= self.patience and epoch < self.epochs

    def _save_checkpoint(self, epoch: int) -> None:
        save_loop_checkpoint(
            self.checkpoint_path,
            identity=self.identity,
            epoch=epoch,
            finished=self.finished,
            outcome=self.outcome,
            best_loss=self.best_loss,
            bad_epochs=self.bad_epochs,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            generator=self.generator,
        )
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.checkpoint_path)

    def _eta(self) -> float | None:
        return _eta(self.attempt_started, self.attempt_steps, self.total_steps - self.outcome.step)

    def _report_epoch(self, result: EpochResult, *, eta: float | None) -> None:
        """Report a finished epoch: at its end, and when a resumed run starts after it."""
        if self.on_progress is None:
            return
        outcome = self.outcome
        self.on_progress(
            Progress(
                phase="train",
                epoch=result.epoch,
                epochs=self.epochs,
                step=outcome.step,
                total_steps=self.total_steps,
                fraction=outcome.step / self.total_steps,
                train_loss=result.train_loss,
                train_accuracy=result.train_accuracy,
                val_loss=result.val_loss,
                val_accuracy=result.val_accuracy,
                images_per_second=outcome.samples_per_second,
                eta_seconds=eta,
            )
        )
