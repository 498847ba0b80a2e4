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
with the machine, in benchmarks/results/train.json (``--output``). The two sides and their
clocks are in benchmarks/train_sides.py.
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
GOAL = 0.97
# Defaults per device: a GPU step is ~20 times faster, so it gets more images for the same
# seconds per run (and more steps between the per-epoch checkpoints).
DEFAULT_IMAGES = {"cpu": 2000, "cuda": 12000}

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.train_sides import (  # noqa: E402
    INPUT_SIZE,
    LABELS,
    TEMPLATE,
    Timing,
    bare_run,
    lockstep_run,
    portal_run,
)
from tests.support.shapes import write_class_folders  # noqa: E402
from workers.ml.data import LabeledImage, load_images  # noqa: E402
from workers.ml.device import pick_device, to_device  # noqa: E402
from workers.ml.loop import steps_per_epoch  # noqa: E402


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
    args, device = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="lepton-bench-train-") as tmp:
        work = Path(tmp)
        samples = _shapes(args, work)
        steps = steps_per_epoch(len(samples), args.batch_size) * args.epochs
        if steps != math.ceil(len(samples) / args.batch_size) * args.epochs or steps < 2:
            raise SystemExit("pick --images so that no batch of one image is left over")
        portal, bare = _rounds(samples, args, device, work)
        for run in portal + bare:
            if run.steps != steps:
                raise SystemExit(f"a run took {run.steps} steps, not {steps}")

    result = _result(args, device, len(samples), steps, portal, bare)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"{TEMPLATE} {INPUT_SIZE}px batch {args.batch_size} on {device.type}: portal "
        f"{_median_ips(portal):.1f} img/s, bare {_median_ips(bare):.1f} img/s; ratio "
        f"{result['ratio']} (median of {args.repeat} rounds; goal >= {GOAL}; of medians "
        f"{result['ratio_of_medians']}, of best runs {result['ratio_of_best_runs']}, per CPU "
        f"second {result['cpu_time_ratio']}) -> {args.output}"
    )
    return result


def _arguments(argv: list[str] | None) -> tuple[argparse.Namespace, torch.device]:
    """The command line, with the defaults that depend on the device filled in."""
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
    if args.turn_steps is None:
        args.turn_steps = 16 if on_cuda else 1
    if args.turn_steps < 1:
        parser.error("--turn-steps must be at least 1")
    threads = args.threads if args.threads is not None else (0 if on_cuda else 1)
    if threads > 0:
        torch.set_num_threads(threads)
    return args, device


def _shapes(args: argparse.Namespace, work: Path) -> list[LabeledImage]:
    per_class = max(1, args.images // len(LABELS))
    print(f"generating {per_class * len(LABELS)} images of {INPUT_SIZE} px ...", flush=True)
    files = write_class_folders(work / "data", per_class=per_class, seed=args.seed, size=32)
    return [
        LabeledImage(work / "data" / name, LABELS.index(label)) for name, label in files.items()
    ]


def _rounds(
    samples: list[LabeledImage], args: argparse.Namespace, device: torch.device, work: Path
) -> tuple[list[Timing], list[Timing]]:
    """An untimed warm-up, then ``--repeat`` rounds of both sides; each round's timings."""
    lockstep = args.interleave == "steps"
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
            portal_timing, bare_timing = lockstep_run(samples, images, labels, args, device, work)
        elif round_ % 2 == 0:
            # Alternate who goes first, so drift in machine load hits both sides alike.
            portal_timing = portal_run(samples, args, device, work)
            bare_timing = bare_run(images, labels, args, device)
        else:
            bare_timing = bare_run(images, labels, args, device)
            portal_timing = portal_run(samples, args, device, work)
        portal.append(portal_timing)
        bare.append(bare_timing)
        _print_round(round_, args.repeat, portal_timing, bare_timing, device, round_started)
    return portal, bare


def _print_round(
    round_: int,
    repeat: int,
    portal_timing: Timing,
    bare_timing: Timing,
    device: torch.device,
    round_started: float,
) -> None:
    line = f"round {round_ + 1}/{repeat}:"
    for side, run in (("portal", portal_timing), ("bare", bare_timing)):
        line += f" {side} {run.images_per_second:.1f} img/s"
        if device.type != "cuda":
            line += f" ({run.cpu_images_per_second:.1f} per CPU s)"
        line += ","
    ratio = portal_timing.images_per_second / bare_timing.images_per_second
    took = time.perf_counter() - round_started
    print(f"{line} ratio {ratio:.4f} ({took:.0f} s)", flush=True)


def _median_ips(runs: list[Timing]) -> float:
    return statistics.median([r.images_per_second for r in runs])


def _result(
    args: argparse.Namespace,
    device: torch.device,
    n: int,
    steps: int,
    portal: list[Timing],
    bare: list[Timing],
) -> dict[str, object]:
    """The result file's contents."""
    on_cuda = device.type == "cuda"
    lockstep = args.interleave == "steps"
    pairs = list(zip(portal, bare, strict=True))
    ratios = [p.images_per_second / b.images_per_second for p, b in pairs]
    ratio = statistics.median(ratios)
    cpu_ratio = (
        statistics.median([p.cpu_images_per_second / b.cpu_images_per_second for p, b in pairs])
        if not on_cuda
        else None
    )
    return {
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
        "interleave": args.interleave,
        "turn_steps": args.turn_steps if lockstep else None,
        "timing": _timing_text(args, on_cuda),
        "ratio": round(ratio, 4),
        "ratio_is": "median over rounds of portal/bare images per second within the round",
        "goal_ratio": GOAL,
        "meets_goal": ratio >= GOAL,
        "round_ratios": [round(r, 4) for r in ratios],
        "ratio_of_medians": round(_median_ips(portal) / _median_ips(bare), 4),
        "ratio_of_best_runs": round(
            max(r.images_per_second for r in portal) / max(r.images_per_second for r in bare), 4
        ),
        # Per second of this process's CPU time over the same windows: on a shared machine,
        # other processes' load barely moves it, unlike wall time. Meaningless on CUDA.
        "cpu_time_ratio": None if cpu_ratio is None else round(cpu_ratio, 4),
        "portal": _portal_side(portal, on_cuda),
        "bare": _bare_side(bare, on_cuda),
        "machine": machine(device),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _timing_text(args: argparse.Namespace, on_cuda: bool) -> str:
    text = "end of step 1 to end of the last step (CUDA synchronised), warm-up excluded"
    if args.interleave != "steps":
        return text + "; whole runs, alternating which side goes first"
    return (
        text
        + f"; both sides in one run, taking turns of {args.turn_steps} step(s), each timed over "
        "its own turns" + ("; device synchronised at every turn" if on_cuda else "")
    )


def _cpu_time_ips(runs: list[Timing], on_cuda: bool) -> float | None:
    if on_cuda:
        return None
    return round(statistics.median([r.cpu_images_per_second for r in runs]), 1)


def _portal_side(portal: list[Timing], on_cuda: bool) -> dict[str, object]:
    return {
        "path": "workers.ml.trainer.train_classifier with the task's callbacks (progress "
        "assembled every step, written at most 1/s; cancellation check every step, status "
        "read at most 1/s; every epoch's checkpoint written and copied to storage)",
        "images_per_second": round(_median_ips(portal), 1),
        "runs_images_per_second": [round(r.images_per_second, 1) for r in portal],
        "cpu_time_images_per_second": _cpu_time_ips(portal, on_cuda),
        "progress_writes_per_run": [int(r.extra["writes"]) for r in portal],
        # Share of the window spent between one step's report and the next step's start
        # (bookkeeping, epoch ends, checkpoints), measured within each run.
        "between_steps_share_median": round(
            statistics.median(r.extra["between_steps_share"] for r in portal), 4
        ),
    }


def _bare_side(bare: list[Timing], on_cuda: bool) -> dict[str, object]:
    return {
        "loop": "data on the device, randperm, normalise, forward, loss, backward, AdamW "
        "(decay on matrices only) + one-cycle step; no callbacks, no checkpoints, no "
        "running metrics",
        "images_per_second": round(_median_ips(bare), 1),
        "runs_images_per_second": [round(r.images_per_second, 1) for r in bare],
        "cpu_time_images_per_second": _cpu_time_ips(bare, on_cuda),
    }


if __name__ == "__main__":
    main()
