"""Checkpoints and resume: a run interrupted after any epoch ends exactly like one that was not."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import torch

from tests.workers.ml.test_trainer import LABELS, REPO_ROOT, Splits, make_splits
from workers.ml.checkpoint import load_bundle
from workers.ml.loop import EpochResult
from workers.ml.trainer import (
    CHECKPOINT_FILENAME,
    Progress,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
    train_classifier,
)

# Dropout, shuffling, flips, shifts and colour jitter all draw random numbers, and early
# stopping keeps a best-weights snapshot: all of it must survive the checkpoint.
CONFIG = TrainConfig(
    epochs=4,
    batch_size=8,
    seed=7,
    crop_padding=2,
    brightness=0.2,
    early_stopping_patience=10,
)
CRASH_EPOCH = 3


def _train(
    splits: Splits, out: Path, *, config: TrainConfig = CONFIG, **kwargs: object
) -> TrainResult:
    return train_classifier(
        config=config,
        labels=LABELS,
        train=splits.train,
        validation=splits.validation,
        test=splits.test,
        output_dir=out,
        device="cpu",
        **kwargs,  # type: ignore[arg-type]
    )


def _weights(result: TrainResult) -> dict[str, torch.Tensor]:
    return load_bundle(result.bundle_path).state_dict


def _without_time(history: list[EpochResult]) -> list[dict[str, object]]:
    return [asdict(epoch) | {"seconds": None} for epoch in history]


def assert_same_run(a: TrainResult, b: TrainResult) -> None:
    weights_a, weights_b = _weights(a), _weights(b)
    assert weights_a.keys() == weights_b.keys()
    different = [key for key in weights_a if not torch.equal(weights_a[key], weights_b[key])]
    assert different == []
    assert _without_time(a.history) == _without_time(b.history)
    assert a.evaluation == b.evaluation


@dataclass(frozen=True)
class Runs:
    splits: Splits
    straight: TrainResult
    crashed_dir: Path  # holds the checkpoint of epoch CRASH_EPOCH - 1 and nothing else


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("resume")
    splits = make_splits(root / "data", per_class=10, seed=2)
    straight = _train(splits, root / "straight")

    steps_per_epoch = -(-len(splits.train) // CONFIG.batch_size)
    checks = 0

    def stop_in_crash_epoch() -> bool:
        nonlocal checks
        checks += 1
        return checks > (CRASH_EPOCH - 1) * steps_per_epoch + 1  # after one step of it

    with pytest.raises(TrainingCancelled):
        _train(splits, root / "crashed", should_stop=stop_in_crash_epoch)
    return Runs(splits, straight, root / "crashed")


def _crashed_copy(runs: Runs, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(runs.crashed_dir, target)
    return target


def test_the_interrupted_run_left_only_its_last_complete_checkpoint(runs: Runs) -> None:
    assert sorted(p.name for p in runs.crashed_dir.iterdir()) == [CHECKPOINT_FILENAME]
    state = torch.load(runs.crashed_dir / CHECKPOINT_FILENAME, weights_only=True)
    assert state["epoch"] == CRASH_EPOCH - 1
    assert not state["finished"]
    assert {"model", "optimizer", "scheduler", "rng", "history", "best"} <= state.keys()
    assert {"torch", "numpy", "python", "generator"} <= state["rng"].keys()


def test_resume_after_a_crash_gives_identical_weights_and_history(
    runs: Runs, tmp_path: Path
) -> None:
    run_dir = _crashed_copy(runs, tmp_path)
    progress: list[Progress] = []
    resumed = _train(runs.splits, run_dir, resume=True, on_progress=progress.append)
    assert resumed.resumed_from_epoch == CRASH_EPOCH - 1
    assert_same_run(runs.straight, resumed)
    # It picks up at the first step after the checkpoint and only trains the epochs left.
    train_steps = [p.step for p in progress if p.phase == "train"]
    steps_per_epoch = -(-len(runs.splits.train) // CONFIG.batch_size)
    assert train_steps[0] == (CRASH_EPOCH - 1) * steps_per_epoch
    assert train_steps[1] == train_steps[0] + 1
    assert {p.epoch for p in progress if p.phase == "train"} == {CRASH_EPOCH - 1, 3, 4}


def test_a_torn_checkpoint_write_is_ignored(runs: Runs, tmp_path: Path) -> None:
    run_dir = _crashed_copy(runs, tmp_path)
    complete = (run_dir / CHECKPOINT_FILENAME).read_bytes()
    # A writer killed while writing the next checkpoint leaves a truncated temporary file.
    torn = run_dir / f".{CHECKPOINT_FILENAME}.k1ll3d.tmp"
    torn.write_bytes(complete[: len(complete) // 2])

    def die_mid_epoch(progress: Progress) -> None:
        if progress.epoch == CRASH_EPOCH and progress.step % 2 == 0:
            raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        _train(runs.splits, run_dir, resume=True, on_progress=die_mid_epoch)
    assert not torn.exists()  # cleaned up before the first new checkpoint

    resumed = _train(runs.splits, run_dir, resume=True)
    assert resumed.resumed_from_epoch == CRASH_EPOCH - 1
    assert_same_run(runs.straight, resumed)


def test_an_unreadable_checkpoint_starts_the_run_afresh(runs: Runs, tmp_path: Path) -> None:
    run_dir = _crashed_copy(runs, tmp_path)
    checkpoint = run_dir / CHECKPOINT_FILENAME
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    result = _train(runs.splits, run_dir, resume=True)
    assert result.resumed_from_epoch == 0
    assert_same_run(runs.straight, result)


def test_a_checkpoint_of_another_run_is_refused(runs: Runs, tmp_path: Path) -> None:
    run_dir = _crashed_copy(runs, tmp_path)
    other = TrainConfig(**(CONFIG.to_dict() | {"seed": 8}))
    with pytest.raises(ValueError, match="belongs to another training run"):
        _train(runs.splits, run_dir, config=other, resume=True)
    fewer = Splits(runs.splits.train[:-1], runs.splits.validation, runs.splits.test)
    with pytest.raises(ValueError, match="its data differs"):
        _train(fewer, run_dir, resume=True)


def test_resume_from_a_named_file_into_another_checkpoint_dir(runs: Runs, tmp_path: Path) -> None:
    saved = tmp_path / "downloaded.pt"
    shutil.copy(runs.crashed_dir / CHECKPOINT_FILENAME, saved)
    uploads: list[int] = []

    def upload(path: Path) -> None:
        uploads.append(torch.load(path, weights_only=True)["epoch"])

    result = _train(
        runs.splits,
        tmp_path / "out",
        resume=saved,
        checkpoint_dir=tmp_path / "checkpoints",
        on_checkpoint=upload,
    )
    assert uploads == [3, 4]
    assert result.checkpoint_path == tmp_path / "checkpoints" / CHECKPOINT_FILENAME
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.pt"]
    assert_same_run(runs.straight, result)
    with pytest.raises(FileNotFoundError):
        _train(runs.splits, tmp_path / "out", resume=tmp_path / "missing.pt")


def test_resuming_a_finished_run_only_evaluates_and_saves(runs: Runs, tmp_path: Path) -> None:
    run_dir = tmp_path / "finished"
    shutil.copytree(runs.straight.bundle_path.parent, run_dir)
    (run_dir / "model.pt").unlink()
    progress: list[Progress] = []
    result = _train(runs.splits, run_dir, resume=True, on_progress=progress.append)
    assert [p.phase for p in progress] == ["evaluate", "done"]
    assert result.resumed_from_epoch == CONFIG.epochs
    assert_same_run(runs.straight, result)


def test_without_resume_an_old_checkpoint_is_overwritten(runs: Runs, tmp_path: Path) -> None:
    run_dir = _crashed_copy(runs, tmp_path)
    result = _train(runs.splits, run_dir)
    assert result.resumed_from_epoch == 0
    assert_same_run(runs.straight, result)


KILLED_WORKER = """
import json, os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from tests.workers.ml.test_resume import CONFIG, CRASH_EPOCH
from tests.workers.ml.test_trainer import LABELS
from workers.ml.data import LabeledImage
from workers.ml.trainer import train_classifier
splits = {
    name: [LabeledImage(Path(path), label) for path, label in samples]
    for name, samples in json.loads(Path(sys.argv[1]).read_text()).items()
}

def die_mid_epoch(progress):
    if progress.epoch == CRASH_EPOCH and progress.step % 3 == 2:
        os.kill(os.getpid(), signal.SIGKILL)

train_classifier(
    config=CONFIG, labels=LABELS, **splits, output_dir=Path(sys.argv[2]),
    on_progress=die_mid_epoch, device="cpu",
)
"""


def test_a_worker_killed_with_sigkill_resumes_from_its_last_checkpoint(
    runs: Runs, tmp_path: Path
) -> None:
    spec = tmp_path / "splits.json"
    spec.write_text(
        json.dumps(
            {
                name: [[str(s.path), s.label] for s in getattr(runs.splits, name)]
                for name in ("train", "validation", "test")
            }
        )
    )
    completed = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER, str(spec), str(tmp_path / "run")],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr[-3000:]
    state = torch.load(tmp_path / "run" / CHECKPOINT_FILENAME, weights_only=True)
    assert state["epoch"] == CRASH_EPOCH - 1

    resumed = _train(runs.splits, tmp_path / "run", resume=True)
    assert resumed.resumed_from_epoch == CRASH_EPOCH - 1
    assert_same_run(runs.straight, resumed)
