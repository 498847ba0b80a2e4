"""Benchmark: the portal's image ingestion against a bare Pillow decode, on the same cores.

    make bench-ingest            # or: .venv/bin/python benchmarks/ingest.py --images 5000

1. generates a zip of small images (tests.support.shapes: coloured shapes, half JPEG, half PNG);
2. portal: migrates a throwaway SQLite database in a throwaway LEPTON_DATA_DIR under var/ (the
   portal's own data folder, so on the disk it stores to, where /tmp may be a RAM disk), signs
   up an organization per run, uploads the zip with dataset_create and times
   dataset_version_ingest, the function the Celery worker calls (archive reading, decoding in
   LEPTON_INGEST_PROCESSES processes that read the zip entries and append the canonical PNGs
   and thumbnails to one pack file per batch themselves, rows, splits, health report);
3. bare: Pillow open + verify + reopen + load + convert to RGB over the same image bytes,
   already in memory, in as many processes as the portal uses (a forked pool, each process
   decoding runs of 32 images it already holds; one process: a plain loop in this process);
4. the same two with ONE process each (the portal decodes in the worker itself), since the
   ratio on many cores can hide a slow per-image path behind the parallelism;
5. for the record, the portal's per-image work alone (decode + canonical PNG + thumbnail +
   hash) in one process, which shows what the portal does beyond a bare decode.

Rounds are interleaved (`--repeat` of them: portal, bare with LEPTON_INGEST_PROCESSES
processes, then portal, bare with one; every other round starts with bare), so drifting load
on a shared machine hits both sides alike. Each ratio is the median over rounds of the
round's own portal / bare images per second, as in benchmarks/train.py; medians of each side
and CPU-time ratios of the one-process runs are written too. An untimed warm-up of each side
comes first: it starts the fork server of the decoding processes, as a worker's first
ingestion does; the timed runs reuse it, as a worker's later ingestions do. Everything goes to
benchmarks/results/ingest.json with the machine described.

The bench deletes its throwaway folder when it ends. Some filesystems keep freed inodes aside
for a while and step over each of them when creating a file: on ext4 without a journal, as on
the machine measured, creating a file 15 to 90 s after a mass deletion nearby took 0.3 to
0.7 ms of kernel time instead of 0.01 to 0.05 ms. The ingestion creates one file per batch of
32 images, not one per image, which keeps that small; still, a bench started within
SETTLE_SECONDS of the last one's cleanup waits out the rest before its first timed run (the
seconds waited are in the results, "waited_for_previous_cleanup_s"). Other processes' mass
deletions nearby are not waited for.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"
#: when the last bench removed its folder, and how long after that the next one waits
CLEANED = ROOT / "var" / "bench-ingest-cleaned"
SETTLE_SECONDS = 90.0
GOAL = 0.8
#: images a bare decoding process takes at a time: the portal's batch size
BARE_CHUNK = 32

#: the bare pool's images, inherited by its forked processes (nothing is sent to them)
_IMAGES: list[bytes] = []


@dataclass(frozen=True)
class Timing:
    seconds: float
    cpu_seconds: float  # this process's CPU time: the whole work when it runs in one process


def build_archive(n_images: int, size: int) -> tuple[bytes, list[bytes]]:
    """A zip of n_images shapes in 3 class folders, alternately JPEG and PNG, and their bytes."""
    import numpy as np

    from tests.support.shapes import SHAPE_CLASSES, image_bytes, make_shape_image

    rng = np.random.default_rng(2026)
    images = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(n_images):
            label = SHAPE_CLASSES[i % len(SHAPE_CLASSES)]
            fmt, ext = ("JPEG", "jpg") if i % 2 else ("PNG", "png")
            data = image_bytes(make_shape_image(label, rng, size), fmt)
            archive.writestr(f"{label}/{label}_{i:05d}.{ext}", data)
            images.append(data)
    return buffer.getvalue(), images


def bare_decode(images: list[bytes]) -> None:
    """The plain way to decode images: verify, reopen, load, convert to RGB."""
    from PIL import Image

    for data in images:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image.convert("RGB")


def _bare_chunk(start: int) -> int:
    chunk = _IMAGES[start : start + BARE_CHUNK]
    bare_decode(chunk)
    return len(chunk)


def bare_run(images: list[bytes], processes: int) -> Timing:
    """bare_decode over every image in `processes` processes (forked once the bytes are in
    memory, so they hold them already; starting them is timed, as the portal's pool is)."""
    start, cpu = time.perf_counter(), time.process_time()
    if processes <= 1:
        bare_decode(images)
    else:
        _IMAGES[:] = images
        context = multiprocessing.get_context("fork")
        with context.Pool(processes) as pool:
            done = sum(pool.imap_unordered(_bare_chunk, range(0, len(images), BARE_CHUNK)))
        if done != len(images):
            raise SystemExit(f"the bare pool decoded {done} of {len(images)} images")
    return Timing(time.perf_counter() - start, time.process_time() - cpu)


def canonical_run(images: list[bytes]) -> Timing:
    """The portal's per-image work alone (decode, re-encode as PNG, thumbnail, hash), single
    process: what the ingestion pays per image beyond a bare decode."""
    from apps.datasets.canonical import canonicalize_batch

    start, cpu = time.perf_counter(), time.process_time()
    canonicalize_batch(images)
    return Timing(time.perf_counter() - start, time.process_time() - cpu)


class Portal:
    """dataset_version_ingest on the same zip, a fresh organization per run."""

    def __init__(self, archive: bytes, n_images: int) -> None:
        self.archive = archive
        self.n_images = n_images
        self.runs = 0

    def run(self, processes: int) -> Timing:
        from django.conf import settings
        from django.core.files.uploadedfile import SimpleUploadedFile

        from apps.accounts.services import user_signup
        from apps.core.jobs import JobStatus
        from apps.datasets.services import dataset_create, dataset_version_ingest

        self.runs += 1
        user, organization = user_signup(
            email=f"bench{self.runs}@lepton.localhost",
            password="Bench-mark-2026",
            organization_name="Bench",
        )
        upload = SimpleUploadedFile("shapes.zip", self.archive, content_type="application/zip")
        version = dataset_create(organization=organization, user=user, name="bench", upload=upload)
        configured = settings.LEPTON_INGEST_PROCESSES
        settings.LEPTON_INGEST_PROCESSES = processes
        try:
            start, cpu = time.perf_counter(), time.process_time()
            version = dataset_version_ingest(version_id=version.pk)
            timing = Timing(time.perf_counter() - start, time.process_time() - cpu)
        finally:
            settings.LEPTON_INGEST_PROCESSES = configured
        if version.status != JobStatus.SUCCEEDED:
            raise SystemExit(f"ingestion failed: {version.message}")
        if version.item_count != self.n_images:
            raise SystemExit(f"ingested {version.item_count} of {self.n_images} images")
        return timing


def settle_after_previous_cleanup() -> float:
    """Seconds waited for the previous bench's cleanup to stop weighing on file creation."""
    try:
        since = time.time() - float(CLEANED.read_text())
    except (OSError, ValueError):
        return 0.0
    wait = SETTLE_SECONDS - since
    if not 0 < wait <= SETTLE_SECONDS:
        return 0.0
    print(f"waiting {wait:.0f}s for the previous bench's cleanup to settle ...", flush=True)
    time.sleep(wait)
    return wait


def machine() -> dict:
    import PIL

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "platform": platform.platform(),
    }


def compare(portal: list[Timing], bare: list[Timing], n_images: int, *, cpu: bool) -> dict:
    """Medians of one pairing of sides: the ratio is the median of each round's own ratio."""
    ratios = [b.seconds / p.seconds for p, b in zip(portal, bare, strict=True)]
    result = {
        "ratio": round(statistics.median(ratios), 3),
        "ratio_is": "median over rounds of portal/bare images per second within the round",
        "round_ratios": [round(r, 3) for r in ratios],
        "portal_images_per_second": round(
            n_images / statistics.median(t.seconds for t in portal), 1
        ),
        "bare_images_per_second": round(n_images / statistics.median(t.seconds for t in bare), 1),
        "portal_runs_seconds": [round(t.seconds, 3) for t in portal],
        "bare_runs_seconds": [round(t.seconds, 3) for t in bare],
    }
    if cpu:
        # Both sides run in this process alone: per CPU second, other processes' load on a
        # shared machine barely moves the figure, unlike wall time.
        cpu_ratios = [b.cpu_seconds / p.cpu_seconds for p, b in zip(portal, bare, strict=True)]
        result["cpu_time_ratio"] = round(statistics.median(cpu_ratios), 3)
    return result


def measure(args: argparse.Namespace, archive: bytes, images: list[bytes], processes: int) -> dict:
    """The interleaved rounds; the timings of each side, by number of processes."""
    portal = Portal(archive, len(images))
    # Untimed: starts the fork server and warms every path once.
    portal.run(processes)
    portal.run(1)
    bare_run(images, processes)
    canonical_run(images[: BARE_CHUNK * 4])
    sides: dict[str, list[Timing]] = {
        "portal_n": [],
        "bare_n": [],
        "portal_1": [],
        "bare_1": [],
        "canonical": [],
    }
    for round_ in range(args.repeat):
        started = time.perf_counter()
        turns = [
            ("portal_n", lambda: portal.run(processes)),
            ("bare_n", lambda: bare_run(images, processes)),
            ("portal_1", lambda: portal.run(1)),
            ("bare_1", lambda: bare_run(images, 1)),
        ]
        if round_ % 2:  # alternate who goes first
            turns = [turns[1], turns[0], turns[3], turns[2]]
        for name, run in turns:
            sides[name].append(run())
        sides["canonical"].append(canonical_run(images))
        s = {name: timings[-1].seconds for name, timings in sides.items()}
        print(
            f"round {round_ + 1}/{args.repeat}: {processes} processes: portal "
            f"{s['portal_n']:.2f}s bare {s['bare_n']:.2f}s ratio "
            f"{s['bare_n'] / s['portal_n']:.3f}; 1 process: portal {s['portal_1']:.2f}s bare "
            f"{s['bare_1']:.2f}s ratio {s['bare_1'] / s['portal_1']:.3f}; canonical only "
            f"{s['canonical']:.2f}s ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return sides


def summary(
    args: argparse.Namespace,
    sides: dict[str, list[Timing]],
    processes: int,
    *,
    archive_bytes: int,
    waited: float,
) -> dict:
    """The figures of a run, with the machine, as written to the results file."""
    n = args.images
    same_cores = compare(sides["portal_n"], sides["bare_n"], n, cpu=processes == 1)
    one_process = compare(sides["portal_1"], sides["bare_1"], n, cpu=True)
    canonical = statistics.median(t.seconds for t in sides["canonical"])
    result = {
        "benchmark": "image ingestion vs bare Pillow decode, same processes and cores",
        "images": n,
        "image_side": args.size,
        "formats": {"JPEG": n // 2, "PNG": n - n // 2},
        "archive_bytes": archive_bytes,
        "repeat": args.repeat,
        "timing": "interleaved rounds (portal, bare with N processes; portal, bare with 1; "
        "every other round bare first), after an untimed warm-up of each side",
        "processes": processes,
        "ratio": same_cores["ratio"],
        "ratio_one_process": one_process["ratio"],
        "goal_ratio": GOAL,
        "meets_goal": same_cores["ratio"] >= GOAL,
        "same_cores": same_cores,
        "one_process": one_process,
        "portal": {
            "path": "apps.datasets.services.dataset_version_ingest (what the worker calls), "
            "LEPTON_INGEST_PROCESSES set to the processes of each pairing",
        },
        "bare": {
            "loop": "Image.open+verify, Image.open+load+convert('RGB') over the bytes in "
            f"memory; N processes: a forked pool, runs of {BARE_CHUNK} images each",
        },
        "canonical_only": {
            "loop": "apps.datasets.canonical.canonicalize_batch, 1 process, bytes in memory",
            "images_per_second": round(n / canonical, 1),
            "runs_seconds": [round(t.seconds, 3) for t in sides["canonical"]],
        },
        "waited_for_previous_cleanup_s": round(waited, 1),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    load_before = os.getloadavg()
    (ROOT / "var").mkdir(exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=ROOT / "var"))
    os.environ["LEPTON_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "lepton_portal.settings"
    os.environ.setdefault("LEPTON_LOG_LEVEL", "WARNING")
    try:
        import django
        from django.conf import settings
        from django.core.management import call_command

        django.setup()
        call_command("migrate", "--noinput", verbosity=0)
        processes = max(1, settings.LEPTON_INGEST_PROCESSES)

        print(f"generating {args.images} images of {args.size}x{args.size} px ...", flush=True)
        archive, images = build_archive(args.images, args.size)
        waited = settle_after_previous_cleanup()
        sides = measure(args, archive, images, processes)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        CLEANED.write_text(f"{time.time()}\n")

    result = summary(args, sides, processes, archive_bytes=len(archive), waited=waited)
    # Other processes' load skews every side; it is written down to judge the run.
    result["machine"]["load_average_1min"] = {
        "before": round(load_before[0], 2),
        "after": round(os.getloadavg()[0], 2),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    n, same_cores, one_process = args.images, result["same_cores"], result["one_process"]
    print(
        f"{n} images of {args.size} px: {processes} processes each: portal "
        f"{same_cores['portal_images_per_second']} img/s, bare "
        f"{same_cores['bare_images_per_second']} img/s, ratio {result['ratio']}; one process "
        f"each: portal {one_process['portal_images_per_second']} img/s, bare "
        f"{one_process['bare_images_per_second']} img/s, ratio {result['ratio_one_process']} "
        f"(medians of {args.repeat} rounds; goal >= {GOAL}) -> {args.output}"
    )


if __name__ == "__main__":
    main()
