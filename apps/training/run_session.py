"""A training run's session on the worker: the callbacks the ML core receives (progress,
checkpoints, cancellation) and the files it reads, written back to the run's row and storage.

apps.training.execution creates one per claimed run; benchmarks/train.py rebuilds the same
callbacks without Django to measure what they cost.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils.translation import gettext

from apps.core.jobs import JobStatus, ProgressReporter
from apps.datasets.storage import storage_quota_check
from apps.training.models import EpochMetric, TrainingRun
from apps.training.services import run_log_append, stored_delete

logger = logging.getLogger(__name__)


class CancelCheck:
    """``should_stop`` for the trainers: reads the run's status at most every `interval` s.

    Checked before every step, so it must be cheap: between reads it answers from memory.
    """

    def __init__(self, run: TrainingRun, interval: float) -> None:
        self.run_id = run.pk
        self.interval = interval
        self._next = 0.0
        self.cancelled = False

    def __call__(self) -> bool:
        if self.cancelled:
            return True
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            status = (
                TrainingRun.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
            )
            self.cancelled = status != JobStatus.RUNNING
        return self.cancelled


class RunSession:
    """What a worker keeps while training one attempt of a run: progress, epochs, checkpoints."""

    def __init__(self, run: TrainingRun, workdir: Path) -> None:
        self.run = run
        self.reporter = ProgressReporter(run)
        self.should_stop = CancelCheck(run, settings.LEPTON_CANCEL_POLL_SECONDS)
        self.checkpoint_dir = workdir / "checkpoint"
        self.checkpoint_dir.mkdir()
        self.output_dir = workdir / "output"
        self.output_dir.mkdir()
        self.started = time.monotonic()
        self.gpu_seconds_before = run.gpu_seconds
        #: "cuda" or "cpu", set by the trainer once it picked the device
        self.device = ""
        self._epoch_done = False
        self._reported = False
        self._epoch_started = time.monotonic()
        self.resume = self._download_checkpoint()

    def trainer_callbacks(self) -> dict[str, Any]:
        """What every trainer of the ML core takes from a run: where to write, how to report,
        when to stop, and its checkpoints."""
        return {
            "output_dir": self.output_dir,
            "on_progress": self.on_progress,
            "should_stop": self.should_stop,
            "checkpoint_dir": self.checkpoint_dir,
            "resume": self.resume,
            "on_checkpoint": self.on_checkpoint,
        }

    def _download_checkpoint(self) -> bool:
        name = self.run.checkpoint
        if not name:
            return False
        try:
            with (
                default_storage.open(name, "rb") as src,
                (self.checkpoint_dir / "checkpoint.pt").open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
        except OSError:
            logger.warning(
                "run %s: stored checkpoint %s is gone; starting afresh", self.run.pk, name
            )
            run_log_append(
                self.run, "The last checkpoint could not be read; starting again from epoch 1."
            )
            return False
        return True

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"

    def gpu_seconds(self) -> float:
        spent = time.monotonic() - self.started if self.on_gpu else 0.0
        return self.gpu_seconds_before + spent

    def on_checkpoint(self, path: Path) -> None:
        """Store the checkpoint under a new name, point the run at it, then drop the old one,
        so a worker killed mid-upload leaves the previous checkpoint usable.

        Raises QuotaExceeded when it would take the organization over its storage quota
        (counting the previous checkpoint as gone): the run fails with that message."""
        self._epoch_done = True
        if self.should_stop.cancelled:
            return
        size = path.stat().st_size
        storage_quota_check(
            organization=self.run.organization,
            adding_bytes=size - self.run.checkpoint_bytes,
            what=gettext("This training run's checkpoint"),
        )
        name = (
            f"orgs/{self.run.organization_id}/runs/{self.run.pk}/checkpoint-{uuid.uuid4().hex}.pt"
        )
        with path.open("rb") as handle:
            stored = default_storage.save(name, File(handle))
        previous = self.run.checkpoint
        updated = TrainingRun.objects.filter(pk=self.run.pk, status=JobStatus.RUNNING).update(
            checkpoint=stored, checkpoint_bytes=size, gpu_seconds=self.gpu_seconds()
        )
        if not updated:  # cancelled meanwhile: nobody will resume from it
            stored_delete(stored)
            return
        self.run.checkpoint, self.run.checkpoint_bytes = stored, size
        stored_delete(previous)

    def on_progress(self, progress: Any) -> None:
        # Called after every step: return at once unless something is to be written.
        if (
            self._reported
            and progress.phase == "train"
            and not self._epoch_done
            and not self.reporter.due()
        ):
            return
        extra: dict[str, Any] = {}
        if not self._reported:
            extra["device"] = self.device
            if self.resume:
                # The loop's first report of a resumed run stands at the checkpoint's epoch.
                extra["resumed_from_epoch"] = progress.epoch
        self._reported = True
        epoch_end = self._epoch_done and progress.phase == "train"
        if epoch_end:
            self._epoch_done = False
            now = time.monotonic()
            seconds, self._epoch_started = now - self._epoch_started, now
            EpochMetric.objects.update_or_create(
                run=self.run,
                epoch=progress.epoch,
                defaults={
                    "organization_id": self.run.organization_id,
                    "train_loss": progress.train_loss,
                    "train_accuracy": progress.train_accuracy,
                    "val_loss": progress.val_loss,
                    "val_accuracy": progress.val_accuracy,
                    "seconds": seconds,
                },
            )
            run_log_append(self.run, epoch_line(progress))
        written = self.reporter.report(
            force=epoch_end or progress.phase == "done",
            progress=min(progress.fraction, 0.999),
            epoch=progress.epoch,
            total_epochs=progress.epochs,
            step=progress.step,
            total_steps=progress.total_steps,
            train_loss=progress.train_loss,
            train_accuracy=progress.train_accuracy,
            val_loss=progress.val_loss,
            val_accuracy=progress.val_accuracy,
            images_per_second=progress.images_per_second,
            eta_seconds=progress.eta_seconds,
            gpu_seconds=self.gpu_seconds(),
            **extra,
            message=(
                "Evaluating on the held-out split"
                if progress.phase in ("evaluate", "done")
                else f"Epoch {progress.epoch} of {progress.epochs}"
            ),
        )
        if written and self.reporter.last_rows == 0:
            self.should_stop.cancelled = True


def epoch_line(progress: Any) -> str:
    parts = [f"Epoch {progress.epoch}/{progress.epochs}: train loss {progress.train_loss:.4f}"]
    if progress.train_accuracy is not None:
        parts.append(f"accuracy {progress.train_accuracy:.1%}")
    if progress.val_loss is not None:
        parts.append(f"validation loss {progress.val_loss:.4f}")
    if progress.val_accuracy is not None:
        parts.append(f"accuracy {progress.val_accuracy:.1%}")
    return ", ".join(parts)


@contextlib.contextmanager
def local_files(names: list[str]) -> Iterator[dict[str, Path]]:
    """Local paths for stored files: the files themselves on local storage, copies otherwise."""
    try:
        yield {name: Path(default_storage.path(name)) for name in names}
        return
    except NotImplementedError:
        pass
    folder = Path(tempfile.mkdtemp(prefix="lepton-data-"))
    try:
        paths: dict[str, Path] = {}
        for name in names:
            target = folder / uuid.uuid4().hex
            with default_storage.open(name, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            paths[name] = target
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)
