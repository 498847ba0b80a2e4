"""Benchmark: training through the portal's worker code path against a bare PyTorch loop.

    make bench-train                                  # CUDA when present, else the CPU
    .venv/bin/python benchmarks/train.py --device cpu --images 2000 --epochs 2 --repeat 7

Both sides train LeptonNet-S on the same generated 32x32 shapes (tests.support.shapes), on the
same device, in the same process (so with the same torch thread count), for the same number of
steps of the same batch size, with AdamW (weight decay on weight matrices only) and a one-cycle
schedule, augmentation off:

- portal: ``workers.ml.trainer.train_classifier``, what the Celery task calls, with the
  callbacks the task gives it, rebuilt here without Django (apps.training.services): an
  ``on_progress`` that assembles the progress fields on every step and "writes" them at most
  once a second (appended to a list), a ``should_stop`` that "reads" the run's status at most
  once a second, and an ``on_checkpoint`` that copies every epoch's checkpoint into a storage
  folder, as the portal's local file storage does. The per-epoch checkpoints are included.
- bare: the loop an engineer would write by hand: the same pixels already on the device,
  shuffle, normalise, forward, loss, backward, AdamW step, schedule step; no callbacks, no
  checkpoints, no running loss or accuracy. On CUDA it gets the portal's settings:
  channels_last, bf16 autocast, fused AdamW, cuDNN autotuning.

Each side's time runs from the end of its first step to the end of its last (CUDA
synchronised), so decoding images, building the model and the final evaluation are outside
it, and so are the first step's one-off costs; the portal's ends after the last epoch's
checkpoint. One untimed epoch of each side comes first (lazy initialisation, cuDNN autotuning
of every batch shape). Then ``--repeat`` rounds. By default (``--interleave steps``) a round is
one run in which the two sides take turns: a turn of ``--turn-steps`` portal steps, then as
many bare ones (the bare loop runs inside the portal's cancellation check), and each side is
timed over its own turns only; on CUDA the device is synchronised at every turn, so each
turn's device work is charged to its side. Load from other processes on a shared machine, or
a drifting clock, then slows both sides alike, which alternating whole runs
(``--interleave runs``) cannot promise. The headline ``ratio`` (portal / bare images per
second) is the median of the rounds' own ratios. Medians of each side, the ratio of the best
runs and, on the CPU, the ratio per second of this process's CPU time are reported beside it,
with the machine, in benchmarks/results/train.json (``--output``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "train.json"
TEMPLATE = "leptonnet-s"
INPUT_SIZE = 32
WEIGHT_DECAY = 5e-4
# The portal's defaults (settings.LEPTON_PROGRESS_INTERVAL, LEPTON_CANCEL_POLL_SECONDS).
PROGRESS_INTERVAL_S = 1.0
CANCEL_POLL_S = 1.0
GOAL = 0.97
# Defaults per device: a GPU step is ~20 times faster, so it gets more images for the same
# seconds per run (and more steps between the per-epoch checkpoints).
DEFAULT_IMAGES = {"cpu": 2000, "cuda": 12000}

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tests.support.shapes import SHAPE_CLASSES, write_class_folders  # noqa: E402
from workers.ml.architectures import build_model  # noqa: E402
from workers.ml.data import MEAN, STD, LabeledImage, load_images  # noqa: E402
from workers.ml.device import pick_device, to_device  # noqa: E402
from workers.ml.loop import Progress, steps_per_epoch  # noqa: E402
from workers.ml.trainer import TrainConfig, train_classifier  # noqa: E402

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


def _clocks() -> tuple[float, float]:
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
        wall, cpu = _clocks()
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
                wall, cpu = _clocks()
        self._sync()
        after_wall, after_cpu = _clocks()
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
            self.stamps[progress.step] = (*_clocks(), bare_steps)
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
        # The bare steps that ran inside the portal's window (its steps 2..last).
        seconds -= sum(wall for wall, _ in bare.turns[bare_1:bare_n])
        cpu_seconds -= sum(cpu for _, cpu in bare.turns[bare_1:bare_n])
    return Timing(
        images=_images_after_first_step(n, args.batch_size, args.epochs),
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
            wall_1, cpu_1 = _clocks()
    if on_cuda:
        torch.cuda.synchronize()
    wall_n, cpu_n = _clocks()
    return Timing(
        images=_images_after_first_step(int(labels.numel()), args.batch_size, args.epochs),
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
        images=_images_after_first_step(int(labels.numel()), args.batch_size, args.epochs),
        seconds=sum(wall for wall, _ in bare.turns),
        cpu_seconds=sum(cpu for _, cpu in bare.turns),
        steps=bare.steps,
    )


def _images_after_first_step(n: int, batch_size: int, epochs: int) -> int:
    return n * epochs - min(n, batch_size)


def machine(device: torch.device) -> dict[str, object]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    described: dict[str, object] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device.type,
    }
    if device.type == "cuda":
        described["gpu"] = torch.cuda.get_device_name(device)
        described["cuda"] = torch.version.cuda
        described["cudnn"] = torch.backends.cudnn.version()
        described["bf16_autocast"] = torch.cuda.is_bf16_supported()
    return described


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA if present)")
    parser.add_argument(
        "--images", type=int, default=None, help="training images (default: 2000 CPU, 12000 CUDA)"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--repeat", type=int, default=7, help="rounds of one run per side")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads for both sides (default: 1 on the CPU, torch's on CUDA)",
    )
    parser.add_argument(
        "--interleave",
        choices=("steps", "runs"),
        default="steps",
        help="steps (default): both sides in one run, taking turns of --turn-steps steps; "
        "runs: whole runs of each side one after the other",
    )
    parser.add_argument(
        "--turn-steps",
        type=int,
        default=None,
        help="steps per turn when interleaving steps (default: 1 on the CPU; 16 on CUDA, "
        "which synchronises the device at every turn)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    on_cuda = device.type == "cuda"
    if args.images is None:
        args.images = DEFAULT_IMAGES[device.type]
    interleave = args.interleave
    lockstep = interleave == "steps"
    if args.turn_steps is None:
        args.turn_steps = 16 if on_cuda else 1
    if args.turn_steps < 1:
        parser.error("--turn-steps must be at least 1")
    threads = args.threads if args.threads is not None else (0 if on_cuda else 1)
    if threads > 0:
        torch.set_num_threads(threads)

    with tempfile.TemporaryDirectory(prefix="lepton-bench-train-") as tmp:
        work = Path(tmp)
        per_class = max(1, args.images // len(LABELS))
        print(f"generating {per_class * len(LABELS)} images of {INPUT_SIZE} px ...", flush=True)
        files = write_class_folders(work / "data", per_class=per_class, seed=args.seed, size=32)
        samples = [
            LabeledImage(work / "data" / name, LABELS.index(label)) for name, label in files.items()
        ]
        n = len(samples)
        steps = steps_per_epoch(n, args.batch_size) * args.epochs
        if steps != math.ceil(n / args.batch_size) * args.epochs or steps < 2:
            raise SystemExit("pick --images so that no batch of one image is left over")
        # The bare loop gets the very pixels the portal decodes, on the device like the portal's.
        images, labels = load_images(samples, INPUT_SIZE)
        images, labels = to_device(images, device), to_device(labels, device)

        # Untimed: one epoch of each, so one-off costs (lazy initialisation, allocator growth,
        # cuDNN autotuning of the full and the last, smaller batch) fall outside the rounds.
        warm = argparse.Namespace(**{**vars(args), "epochs": 1})
        if lockstep:
            lockstep_run(samples, images, labels, warm, device, work)
        else:
            portal_run(samples, warm, device, work)
            bare_run(images, labels, warm, device)

        portal: list[Timing] = []
        bare: list[Timing] = []
        for round_ in range(args.repeat):
            round_started = time.perf_counter()
            if lockstep:
                portal_timing, bare_timing = lockstep_run(
                    samples, images, labels, args, device, work
                )
            elif round_ % 2 == 0:
                # Alternate who goes first, so drift in machine load hits both sides alike.
                portal_timing = portal_run(samples, args, device, work)
                bare_timing = bare_run(images, labels, args, device)
            else:
                bare_timing = bare_run(images, labels, args, device)
                portal_timing = portal_run(samples, args, device, work)
            portal.append(portal_timing)
            bare.append(bare_timing)
            line = f"round {round_ + 1}/{args.repeat}:"
            for side, run in (("portal", portal_timing), ("bare", bare_timing)):
                line += f" {side} {run.images_per_second:.1f} img/s"
                if not on_cuda:
                    line += f" ({run.cpu_images_per_second:.1f} per CPU s)"
                line += ","
            ratio = portal_timing.images_per_second / bare_timing.images_per_second
            took = time.perf_counter() - round_started
            print(f"{line} ratio {ratio:.4f} ({took:.0f} s)", flush=True)
        for run in portal + bare:
            if run.steps != steps:
                raise SystemExit(f"a run took {run.steps} steps, not {steps}")

    pairs = list(zip(portal, bare, strict=True))
    ratios = [p.images_per_second / b.images_per_second for p, b in pairs]
    ratio = statistics.median(ratios)
    portal_ips = statistics.median([r.images_per_second for r in portal])
    bare_ips = statistics.median([r.images_per_second for r in bare])
    cpu_ratio = (
        statistics.median([p.cpu_images_per_second / b.cpu_images_per_second for p, b in pairs])
        if not on_cuda
        else None
    )
    result: dict[str, object] = {
        "benchmark": "training: portal worker code path vs bare PyTorch loop",
        "model": TEMPLATE,
        "input_size": INPUT_SIZE,
        "device": device.type,
        "images": n,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "steps": steps,
        "augmentation": "off on both sides",
        "settings": (
            "channels_last, bf16 autocast, fused AdamW, cuDNN autotuning, data on the GPU"
            if on_cuda
            else "float32, contiguous"
        ),
        "repeat": args.repeat,
        "interleave": interleave,
        "turn_steps": args.turn_steps if lockstep else None,
        "timing": "end of step 1 to end of the last step (CUDA synchronised), warm-up excluded"
        + (
            f"; both sides in one run, taking turns of {args.turn_steps} step(s), each timed over "
            "its own turns" + ("; device synchronised at every turn" if on_cuda else "")
            if lockstep
            else "; whole runs, alternating which side goes first"
        ),
        "ratio": round(ratio, 4),
        "ratio_is": "median over rounds of portal/bare images per second within the round",
        "goal_ratio": GOAL,
        "meets_goal": ratio >= GOAL,
        "round_ratios": [round(r, 4) for r in ratios],
        "ratio_of_medians": round(portal_ips / bare_ips, 4),
        "ratio_of_best_runs": round(
            max(r.images_per_second for r in portal) / max(r.images_per_second for r in bare), 4
        ),
        # Per second of this process's CPU time over the same windows: on a shared machine,
        # other processes' load barely moves it, unlike wall time. Meaningless on CUDA.
        "cpu_time_ratio": None if cpu_ratio is None else round(cpu_ratio, 4),
        "portal": {
            "path": "workers.ml.trainer.train_classifier with the task's callbacks (progress "
            "assembled every step, written at most 1/s; cancellation check every step, status "
            "read at most 1/s; every epoch's checkpoint written and copied to storage)",
            "images_per_second": round(portal_ips, 1),
            "runs_images_per_second": [round(r.images_per_second, 1) for r in portal],
            "cpu_time_images_per_second": None
            if on_cuda
            else round(statistics.median([r.cpu_images_per_second for r in portal]), 1),
            "progress_writes_per_run": [int(r.extra["writes"]) for r in portal],
            # Share of the window spent between one step's report and the next step's start
            # (bookkeeping, epoch ends, checkpoints), measured within each run.
            "between_steps_share_median": round(
                statistics.median(r.extra["between_steps_share"] for r in portal), 4
            ),
        },
        "bare": {
            "loop": "data on the device, randperm, normalise, forward, loss, backward, AdamW "
            "(decay on matrices only) + one-cycle step; no callbacks, no checkpoints, no "
            "running metrics",
            "images_per_second": round(bare_ips, 1),
            "runs_images_per_second": [round(r.images_per_second, 1) for r in bare],
            "cpu_time_images_per_second": None
            if on_cuda
            else round(statistics.median([r.cpu_images_per_second for r in bare]), 1),
        },
        "machine": machine(device),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"{TEMPLATE} {INPUT_SIZE}px batch {args.batch_size} on {device.type}: portal "
        f"{portal_ips:.1f} img/s, bare {bare_ips:.1f} img/s; ratio {result['ratio']} (median of "
        f"{args.repeat} rounds; goal >= {GOAL}; of medians {result['ratio_of_medians']}, of best "
        f"runs {result['ratio_of_best_runs']}, per CPU second {result['cpu_time_ratio']}) "
        f"-> {args.output}"
    )
    return result


if __name__ == "__main__":
    main()
