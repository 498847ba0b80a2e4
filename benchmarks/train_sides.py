"""The two sides of the training benchmark (benchmarks/train.py) and how each is timed.

- portal: ``workers.ml.trainer.train_classifier`` with the callbacks the Celery task gives it
  (:class:`PortalSession`), timed from the end of its first step to the end of its last.
- bare: the hand-written loop (:func:`bare_steps`), on its own (:func:`bare_run`) or in turns
  inside the portal's cancellation check (:class:`BareTurns`, :func:`lockstep_run`).

Imported by benchmarks/train.py once the repository root is on ``sys.path``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tests.support.shapes import SHAPE_CLASSES
from workers.ml.architectures import build_model
from workers.ml.data import MEAN, STD, LabeledImage
from workers.ml.loop import Progress, steps_per_epoch
from workers.ml.trainer import TrainConfig, train_classifier

TEMPLATE = "leptonnet-s"
INPUT_SIZE = 32
WEIGHT_DECAY = 5e-4
# The portal's defaults (settings.LEPTON_PROGRESS_INTERVAL, LEPTON_CANCEL_POLL_SECONDS).
PROGRESS_INTERVAL_S = 1.0
CANCEL_POLL_S = 1.0
LABELS = list(SHAPE_CLASSES)


class Timing:
    """One side's timed window: from the end of step 1 to the end of the last step."""

    def __init__(
        self,
        *,
        images: int,
        seconds: float,
        cpu_seconds: float,
        steps: int,
        extra: dict[str, float] | None = None,
    ) -> None:
        self.images = images
        self.seconds = seconds
        self.cpu_seconds = cpu_seconds
        self.steps = steps
        self.extra = extra or {}

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds

    @property
    def cpu_images_per_second(self) -> float:
        return self.images / self.cpu_seconds if self.cpu_seconds > 0 else math.nan


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class BareTurns:
    """Runs the bare loop a turn of ``turn_steps`` steps at a time (lockstep mode).

    Each turn is timed on its own; on CUDA the device is synchronised before a turn (the wait
    for the portal's queued work stays in the portal's time) and after it (so the bare steps'
    device work is in the bare turn). The bare loop's first step is left out, like the portal's.
    """

    def __init__(self, steps: Iterator[None], turn_steps: int, on_cuda: bool) -> None:
        self._steps = steps
        self.turn_steps = turn_steps
        self._sync = torch.cuda.synchronize if on_cuda else (lambda: None)
        self.turns: list[tuple[float, float]] = []  # (wall, CPU) seconds of each turn
        self.steps = 0
        self.done = False

    def __call__(self, *, final: bool = False) -> None:
        """Run one turn, or with ``final`` every step left."""
        if self.done:
            return
        self._sync()
        wall, cpu = clocks()
        taken = 0
        while final or taken < self.turn_steps:
            try:
                next(self._steps)
            except StopIteration:
                self.done = True
                break
            taken += 1
            self.steps += 1
            if self.steps == 1:
                self._sync()
                wall, cpu = clocks()
        self._sync()
        after_wall, after_cpu = clocks()
        self.turns.append((after_wall - wall, after_cpu - cpu))


class PortalSession:
    """The callbacks apps.training.services gives the trainer, without the database.

    ``on_progress`` does per call what ``_RunSession.on_progress`` does before its throttled
    ``ProgressReporter.report``: assemble the fields, then write (here: append) at most once per
    interval and at every epoch end. ``should_stop`` is ``_CancelCheck``: a clock read per step
    and a status "read" at most once per interval. ``on_checkpoint`` copies the checkpoint into
    a storage folder and drops the previous copy. The first and last steps' reports also stamp
    the timing window (after a CUDA synchronise, so queued GPU work is inside it).

    In lockstep mode ``should_stop`` runs a turn of the bare loop (``bare``) before every
    ``bare.turn_steps``-th portal step, and the rest of the bare loop before the portal's final
    evaluation; the turns' time is taken out of the portal's window.
    """

    def __init__(
        self, storage: Path, total_steps: int, on_cuda: bool, bare: BareTurns | None = None
    ) -> None:
        self.storage = storage
        self.total_steps = total_steps
        self.on_cuda = on_cuda
        self.bare = bare
        self.writes: list[dict[str, Any]] = []
        self.status_reads = 0
        self._last_write: float | None = None
        self._next_status_read = 0.0
        self._epoch_done = False
        self._stored: Path | None = None
        self._checkpoints = 0
        self._started = time.monotonic()
        # step -> (wall, CPU) clocks and the number of bare turns run by then
        self.stamps: dict[int, tuple[float, float, int]] = {}
        self._stop_checks = 0
        # Wall clock when each step starts (its should_stop call, before any bare turn) and when
        # it is first reported: what lies between the two is the trainer's own work.
        self.step_starts: list[float] = []
        self.step_reports: list[float] = []

    def should_stop(self) -> bool:
        self.step_starts.append(time.perf_counter())
        if self.bare is not None:
            # Checks 0 .. total_steps - 1 come before the steps, the last one before evaluating.
            if self._stop_checks >= self.total_steps:
                self.bare(final=True)
            elif self._stop_checks % self.bare.turn_steps == 0:
                self.bare()
        self._stop_checks += 1
        now = time.monotonic()
        if now >= self._next_status_read:
            self._next_status_read = now + CANCEL_POLL_S
            self.status_reads += 1
        return False

    def on_checkpoint(self, path: Path) -> None:
        self._epoch_done = True
        self._checkpoints += 1
        stored = self.storage / f"checkpoint-{self._checkpoints}.pt"
        shutil.copyfile(path, stored)
        if self._stored is not None:
            self._stored.unlink()
        self._stored = stored

    def on_progress(self, progress: Progress) -> None:
        if progress.phase == "train" and len(self.step_reports) < progress.step:
            self.step_reports.append(time.perf_counter())
        if progress.phase == "train" and progress.step in (1, self.total_steps):
            if self.on_cuda:
                torch.cuda.synchronize()
            # An epoch's last step is reported twice (after the step, after the checkpoint):
            # the later stamp wins, so the last checkpoint is inside the window.
            bare_steps = 0 if self.bare is None else len(self.bare.turns)
            self.stamps[progress.step] = (*clocks(), bare_steps)
        epoch_end = self._epoch_done and progress.phase == "train"
        self._epoch_done = False
        fields = {
            "progress": min(progress.fraction, 0.999),
            "epoch": progress.epoch,
            "total_epochs": progress.epochs,
            "step": progress.step,
            "total_steps": progress.total_steps,
            "train_loss": progress.train_loss,
            "train_accuracy": progress.train_accuracy,
            "val_loss": progress.val_loss,
            "val_accuracy": progress.val_accuracy,
            "images_per_second": progress.images_per_second,
            "eta_seconds": progress.eta_seconds,
            "gpu_seconds": time.monotonic() - self._started if self.on_cuda else 0.0,
            "message": f"Epoch {progress.epoch} of {progress.epochs}",
        }
        now = time.monotonic()
        force = epoch_end or progress.phase == "done"
        if (
            not force
            and self._last_write is not None
            and now - self._last_write < PROGRESS_INTERVAL_S
        ):
            return
        self._last_write = now
        self.writes.append(fields)


def portal_run(
    samples: list[LabeledImage],
    args: argparse.Namespace,
    device: torch.device,
    work: Path,
    bare: BareTurns | None = None,
) -> Timing:
    """Train through train_classifier with the portal's callbacks; time steps 2..last.

    With ``bare``, one bare step runs before each portal step and its time is subtracted.
    """
    n = len(samples)
    total_steps = steps_per_epoch(n, args.batch_size) * args.epochs
    config = TrainConfig(
        template=TEMPLATE,
        epochs=args.epochs,
        batch_size=args.batch_size,
        input_size=INPUT_SIZE,
        learning_rate=args.learning_rate,
        weight_decay=WEIGHT_DECAY,
        flip=False,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        storage = Path(tmp) / "storage"
        storage.mkdir()
        session = PortalSession(storage, total_steps, device.type == "cuda", bare)
        train_classifier(
            config=config,
            labels=LABELS,
            train=samples,
            validation=[],
            # A few images, so the final evaluation (outside the timing) stays short.
            test=samples[:: max(1, n // 30)],
            output_dir=Path(tmp) / "output",
            checkpoint_dir=Path(tmp) / "checkpoint",
            on_progress=session.on_progress,
            should_stop=session.should_stop,
            on_checkpoint=session.on_checkpoint,
            device=str(device),
        )
    return _portal_timing(session, n, args, bare)


def _portal_timing(
    session: PortalSession, n: int, args: argparse.Namespace, bare: BareTurns | None
) -> Timing:
    """The portal's window (its steps 2..last), less the bare turns that ran inside it."""
    total_steps = session.total_steps
    (wall_1, cpu_1, bare_1), (wall_n, cpu_n, bare_n) = (
        session.stamps[1],
        session.stamps[total_steps],
    )
    seconds, cpu_seconds = wall_n - wall_1, cpu_n - cpu_1
    # Between steps: from each step's report to the next step's start, and after the last
    # step's report (its epoch's end and checkpoint) to the end of the window.
    starts, reports = session.step_starts, session.step_reports
    between = sum(starts[k] - reports[k - 1] for k in range(1, total_steps))
    between += wall_n - reports[total_steps - 1]
    if bare is not None:
        seconds -= sum(wall for wall, _ in bare.turns[bare_1:bare_n])
        cpu_seconds -= sum(cpu for _, cpu in bare.turns[bare_1:bare_n])
    return Timing(
        images=images_after_first_step(n, args.batch_size, args.epochs),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        steps=total_steps,
        extra={
            "writes": len(session.writes),
            "status_reads": session.status_reads,
            "between_steps_share": between / seconds,
        },
    )


def bare_steps(
    images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace, device: torch.device
) -> Iterator[None]:
    """The hand-written loop over uint8 images and labels already on ``device``.

    A generator that yields after every step, so it can run on its own or in lockstep.
    """
    on_cuda = device.type == "cuda"
    torch.manual_seed(args.seed)
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    memory_format = torch.channels_last if on_cuda else torch.contiguous_format
    use_bf16 = on_cuda and torch.cuda.is_bf16_supported()
    # (x / 255 - mean) / std as one multiply-add.
    scale = torch.tensor([1.0 / (255.0 * s) for s in STD], device=device).view(3, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)], device=device)
    shift = shift.view(3, 1, 1)
    model = build_model(TEMPLATE, num_classes=len(LABELS)).to(device, memory_format=memory_format)
    # Weight decay on weight matrices only, as usual (and as the portal does).
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": WEIGHT_DECAY},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, fused=on_cuda)
    n = int(labels.numel())
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=args.learning_rate,
        total_steps=math.ceil(n / args.batch_size) * args.epochs,
    )
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    for _ in range(args.epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, args.batch_size):
            index = order[start : start + args.batch_size]
            inputs = torch.addcmul(shift, images[index].float(), scale)
            inputs = inputs.contiguous(memory_format=memory_format)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
                loss = F.cross_entropy(model(inputs).float(), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            yield


def bare_run(
    images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace, device: torch.device
) -> Timing:
    """The bare loop on its own; time steps 2..last."""
    on_cuda = device.type == "cuda"
    step = 0
    wall_1 = cpu_1 = 0.0
    for _ in bare_steps(images, labels, args, device):
        step += 1
        if step == 1:
            if on_cuda:
                torch.cuda.synchronize()
            wall_1, cpu_1 = clocks()
    if on_cuda:
        torch.cuda.synchronize()
    wall_n, cpu_n = clocks()
    return Timing(
        images=images_after_first_step(int(labels.numel()), args.batch_size, args.epochs),
        seconds=wall_n - wall_1,
        cpu_seconds=cpu_n - cpu_1,
        steps=step,
    )


def lockstep_run(
    samples: list[LabeledImage],
    images: torch.Tensor,
    labels: torch.Tensor,
    args: argparse.Namespace,
    device: torch.device,
    work: Path,
) -> tuple[Timing, Timing]:
    """Both sides in turns, in one thread: a few portal steps, then as many bare ones, ...

    Load from other processes, or a drifting clock, then slows both sides alike. Each side's
    time is the sum of its own turns: the bare ones' (its steps 2..last), and the portal's
    window (its steps 2..last) less the bare turns inside it.
    """
    bare = BareTurns(
        bare_steps(images, labels, args, device), args.turn_steps, device.type == "cuda"
    )
    portal = portal_run(samples, args, device, work, bare)
    bare(final=True)  # normally done already: the portal checks should_stop before evaluating
    return portal, Timing(
        images=images_after_first_step(int(labels.numel()), args.batch_size, args.epochs),
        seconds=sum(wall for wall, _ in bare.turns),
        cpu_seconds=sum(cpu for _, cpu in bare.turns),
        steps=bare.steps,
    )


def images_after_first_step(n: int, batch_size: int, epochs: int) -> int:
    return n * epochs - min(n, batch_size)
