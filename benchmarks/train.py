"""Benchmark: training through the portal's worker code path against a bare PyTorch loop.

    make bench-train          # or: .venv/bin/python benchmarks/train.py --images 2000 --epochs 2

Both sides train LeptonNet-S on the same generated 32x32 shapes (tests.support.shapes), on the
same device, for the same number of steps of the same batch size, with the same optimizer
(AdamW) and schedule (one-cycle), augmentation off on both:

- portal: ``workers.ml.trainer.train_classifier``, what the Celery task calls, with an
  ``on_progress`` callback that throttles like the portal's ProgressReporter (a cheap call every
  step, a "write" at most once a second, simulated by appending to a list: the Django write is
  not part of workers.ml) and a ``should_stop`` check before every step; its per-epoch
  checkpoints are included.
- bare: the loop an engineer would write by hand: data tensors already on the device, shuffle,
  normalise, forward, loss, backward, step; no callbacks, no checkpoints. On CUDA it gets the
  same treatment as the portal (channels_last, bf16 autocast, fused AdamW, cuDNN autotuning).

Timing runs from the end of the first step to the end of the last (CUDA synchronised at both
ends), so decoding images, building the model and the final evaluation are outside it, and
the first step's one-off costs are too. The sides alternate for ``--repeat`` rounds after a
warm-up; the median images per second of each side and their ratio (portal / bare) go to
benchmarks/results/train.json with the machine. On the CPU the same is reported per second of
this process's CPU time, which other processes on a shared machine disturb far less.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "train.json"
TEMPLATE = "leptonnet-s"
INPUT_SIZE = 32
PROGRESS_INTERVAL_S = 1.0
GOAL = 0.97

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tests.support.shapes import SHAPE_CLASSES, write_class_folders  # noqa: E402
from workers.ml.architectures import build_model  # noqa: E402
from workers.ml.data import LabeledImage, load_images, normalize  # noqa: E402
from workers.ml.device import pick_device  # noqa: E402
from workers.ml.loop import Progress, steps_per_epoch  # noqa: E402
from workers.ml.trainer import TrainConfig, train_classifier  # noqa: E402

LABELS = list(SHAPE_CLASSES)


class ThrottledReporter:
    """Stands in for apps.core.jobs.ProgressReporter: writes at most once per interval."""

    def __init__(self, interval: float = PROGRESS_INTERVAL_S) -> None:
        self.interval = interval
        self.writes: list[dict[str, object]] = []
        self._last: float | None = None
        # step -> (wall, CPU) time of its last progress call: an epoch's last step is reported
        # twice, right after the step and again after the epoch's checkpoint.
        self.step_times: dict[int, tuple[float, float]] = {}
        # step -> wall time of its first progress call, right after the optimizer step
        self.first_report: dict[int, float] = {}
        # wall time of every should_stop call, made just before each step
        self.stop_checks: list[float] = []

    def should_stop(self) -> bool:
        self.stop_checks.append(time.perf_counter())
        return False

    def outside_steps_share(self) -> float:
        """Share of the timed window between one step's report and the next step's start.

        That is the trainer's own work: bookkeeping, the epoch ends, the checkpoints. Measured
        within one run, so unlike a comparison of two runs it hardly moves with machine load.
        """
        steps = sorted(self.step_times)
        outside = sum(self.stop_checks[s] - self.first_report[s] for s in steps[:-1])
        outside += self.step_times[steps[-1]][0] - self.first_report[steps[-1]]
        return outside / (self.step_times[steps[-1]][0] - self.step_times[1][0])

    def __call__(self, progress: Progress) -> None:
        now = time.perf_counter()
        if progress.phase == "train":
            self.step_times[progress.step] = (now, time.process_time())
            self.first_report.setdefault(progress.step, now)
        force = progress.phase == "done"
        if not force and self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        self.writes.append(
            {
                "progress": min(progress.fraction, 0.999),
                "epoch": progress.epoch,
                "step": progress.step,
                "train_loss": progress.train_loss,
                "train_accuracy": progress.train_accuracy,
                "images_per_second": progress.images_per_second,
            }
        )


def portal_run(
    samples: list[LabeledImage], args: argparse.Namespace, work: Path, *, steps: int | None = None
) -> dict[str, float]:
    """Train through train_classifier; images/s between the end of step 1 and of the last."""
    epochs = args.epochs if steps is None else 1
    config = TrainConfig(
        template=TEMPLATE,
        epochs=epochs,
        batch_size=args.batch_size,
        input_size=INPUT_SIZE,
        learning_rate=args.learning_rate,
        flip=False,
        seed=args.seed,
    )
    reporter = ThrottledReporter()
    with tempfile.TemporaryDirectory(dir=work) as out:
        result = train_classifier(
            config=config,
            labels=LABELS,
            train=samples[: None if steps is None else steps * args.batch_size],
            validation=[],
            # A few images, so the final evaluation (outside the timing) stays short.
            test=samples[:: max(1, len(samples) // 30)],
            output_dir=Path(out),
            on_progress=reporter,
            should_stop=reporter.should_stop,
            device=args.device,
        )
    last = max(reporter.step_times)
    (wall_1, cpu_1), (wall_n, cpu_n) = reporter.step_times[1], reporter.step_times[last]
    images = _images_after_first_step(len(samples), args.batch_size, epochs)
    return {
        "images_per_second": images / (wall_n - wall_1) if steps is None else 0.0,
        "cpu_images_per_second": images / (cpu_n - cpu_1) if steps is None else 0.0,
        "seconds": wall_n - wall_1,
        "steps": last,
        "writes": len(reporter.writes),
        "outside_steps_share": reporter.outside_steps_share(),
        "trainer_reported_images_per_second": result.images_per_second,
    }


def bare_run(
    images: torch.Tensor,
    labels: torch.Tensor,
    args: argparse.Namespace,
    *,
    steps: int | None = None,
) -> dict[str, float]:
    """The hand-written loop over tensors already on the device."""
    device = pick_device(args.device)
    on_cuda = device.type == "cuda"
    epochs = args.epochs if steps is None else 1
    if steps is not None:
        images, labels = images[: steps * args.batch_size], labels[: steps * args.batch_size]
    images, labels = images.to(device), labels.to(device)
    torch.manual_seed(args.seed)
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    memory_format = torch.channels_last if on_cuda else torch.contiguous_format
    use_bf16 = on_cuda and torch.cuda.is_bf16_supported()
    model = build_model(TEMPLATE, num_classes=len(LABELS)).to(device, memory_format=memory_format)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=args.learning_rate, weight_decay=5e-4, fused=on_cuda
    )
    n = int(labels.numel())
    per_epoch = math.ceil(n / args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.learning_rate, total_steps=per_epoch * epochs
    )
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    step = 0
    started = cpu_started = 0.0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, args.batch_size):
            index = order[start : start + args.batch_size]
            inputs = normalize(images[index]).contiguous(memory_format=memory_format)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
                loss = F.cross_entropy(model(inputs).float(), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step == 1:
                if on_cuda:
                    torch.cuda.synchronize()
                started, cpu_started = time.perf_counter(), time.process_time()
    if on_cuda:
        torch.cuda.synchronize()
    window = time.perf_counter() - started
    cpu_window = time.process_time() - cpu_started
    images_done = _images_after_first_step(n, args.batch_size, epochs)
    return {
        "images_per_second": images_done / window if steps is None else 0.0,
        "cpu_images_per_second": images_done / cpu_window if steps is None else 0.0,
        "seconds": window,
        "steps": step,
    }


def _images_after_first_step(n: int, batch_size: int, epochs: int) -> int:
    return n * epochs - min(n, batch_size)


def machine(device: torch.device, threads: int) -> dict[str, object]:
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
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device.type,
    }
    if device.type == "cuda":
        described["gpu"] = torch.cuda.get_device_name(device)
        described["cuda"] = torch.version.cuda
    return described


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--repeat", type=int, default=5, help="alternating rounds per side")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: CUDA if present)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    with tempfile.TemporaryDirectory(prefix="lepton-bench-train-") as tmp:
        work = Path(tmp)
        per_class = max(1, args.images // len(LABELS))
        print(f"generating {per_class * len(LABELS)} images of {INPUT_SIZE} px ...", flush=True)
        files = write_class_folders(work / "data", per_class=per_class, seed=args.seed, size=32)
        samples = [
            LabeledImage(work / "data" / name, LABELS.index(label)) for name, label in files.items()
        ]
        # The bare loop gets the very pixels the portal decodes, already in memory.
        images, labels = load_images(samples, INPUT_SIZE)
        n = len(samples)
        expected_steps = steps_per_epoch(n, args.batch_size) * args.epochs
        if expected_steps != math.ceil(n / args.batch_size) * args.epochs:
            raise SystemExit("pick --images so that no batch of one image is left over")

        # Warm-up: first-call costs (lazy imports, allocator, cuDNN autotuning) fall here.
        portal_run(samples, args, work, steps=4)
        bare_run(images, labels, args, steps=4)

        portal: list[dict[str, float]] = []
        bare: list[dict[str, float]] = []
        for round_ in range(args.repeat):
            # Alternate who goes first, so drift in machine load hits both sides alike.
            order = ("portal", "bare") if round_ % 2 == 0 else ("bare", "portal")
            for side in order:
                if side == "portal":
                    portal.append(portal_run(samples, args, work))
                else:
                    bare.append(bare_run(images, labels, args))
                run = (portal if side == "portal" else bare)[-1]
                print(
                    f"round {round_ + 1}/{args.repeat} {side:6s} "
                    f"{run['images_per_second']:8.1f} img/s "
                    f"({run['cpu_images_per_second']:6.1f} per CPU second) "
                    + (
                        f"{100 * run['outside_steps_share']:.2f}% between steps "
                        if side == "portal"
                        else ""
                    )
                    + f"over {run['steps']:.0f} steps",
                    flush=True,
                )
        for run in portal + bare:
            if run["steps"] != expected_steps:
                raise SystemExit(f"a run took {run['steps']} steps, not {expected_steps}")

    pairs = list(zip(portal, bare, strict=True))
    portal_ips = statistics.median(r["images_per_second"] for r in portal)
    bare_ips = statistics.median(r["images_per_second"] for r in bare)
    portal_cpu = statistics.median(r["cpu_images_per_second"] for r in portal)
    bare_cpu = statistics.median(r["cpu_images_per_second"] for r in bare)
    result: dict[str, object] = {
        "benchmark": "training: portal worker code path vs bare PyTorch loop",
        "model": TEMPLATE,
        "input_size": INPUT_SIZE,
        "images": n,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "steps": expected_steps,
        "augmentation": "off on both sides",
        "repeat": args.repeat,
        "portal": {
            "path": "workers.ml.trainer.train_classifier with a throttled on_progress "
            "(1 write/s, simulated) and should_stop; per-epoch checkpoints included",
            "images_per_second": round(portal_ips, 1),
            "runs_images_per_second": [round(r["images_per_second"], 1) for r in portal],
            "cpu_time_images_per_second": round(portal_cpu, 1),
            "progress_writes_per_run": [int(r["writes"]) for r in portal],
            # Within each run: share of time between one step and the next (bookkeeping,
            # epoch ends, checkpoints); 1 - this bounds the ratio a quiet machine would show.
            "outside_steps_share_median": round(
                statistics.median(r["outside_steps_share"] for r in portal), 4
            ),
            "trainer_reported_images_per_second": [
                round(r["trainer_reported_images_per_second"], 1) for r in portal
            ],
        },
        "bare": {
            "loop": "tensors on the device, randperm, normalise, forward, loss, backward, "
            "AdamW + one-cycle step; no callbacks, no checkpoints",
            "images_per_second": round(bare_ips, 1),
            "runs_images_per_second": [round(r["images_per_second"], 1) for r in bare],
            "cpu_time_images_per_second": round(bare_cpu, 1),
        },
        "ratio": round(portal_ips / bare_ips, 4),
        # Each round's portal run against the bare run beside it, then the median: slow drift
        # in machine load cancels out within a round.
        "paired_ratio_median": round(
            statistics.median(p["images_per_second"] / b["images_per_second"] for p, b in pairs), 4
        ),
        # Images per second of this process's CPU time over the same windows: on a shared
        # machine other processes' load barely moves it, unlike wall time. Meaningless on CUDA.
        "cpu_time_ratio": round(portal_cpu / bare_cpu, 4) if device.type == "cpu" else None,
        "goal_ratio": GOAL,
        "machine": machine(device, torch.get_num_threads()),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"portal {portal_ips:.1f} img/s, bare {bare_ips:.1f} img/s, ratio "
        f"{result['ratio']} (goal >= {GOAL}; paired: {result['paired_ratio_median']}, per CPU "
        f"second: {result['cpu_time_ratio']}) "
        f"on {device.type} -> {args.output}"
    )
    return result


if __name__ == "__main__":
    main()
