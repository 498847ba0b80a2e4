"""End-to-end training on generated shapes: accuracy, agreement with the Predictor, progress,
cancellation, determinism and input validation. Sized to run in seconds on two CPU cores."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.support.shapes import SHAPE_CLASSES, write_class_folders
from workers.ml.checkpoint import load_bundle
from workers.ml.data import LabeledImage
from workers.ml.images import decode_image
from workers.ml.metrics import evaluate_classification
from workers.ml.predictor import Predictor
from workers.ml.trainer import (
    Progress,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
    pick_device,
    train_classifier,
)

LABELS = list(SHAPE_CLASSES)
CONFIG = TrainConfig(epochs=8, batch_size=16, input_size=32, seed=0)


@dataclass(frozen=True)
class Splits:
    train: list[LabeledImage]
    validation: list[LabeledImage]
    test: list[LabeledImage]


def make_splits(root: Path, *, per_class: int, seed: int) -> Splits:
    """60/20/20 split per class, in file order (the generator already randomises images)."""
    files = write_class_folders(root, per_class=per_class, seed=seed, size=32)
    train: list[LabeledImage] = []
    validation: list[LabeledImage] = []
    test: list[LabeledImage] = []
    seen: dict[str, int] = {}
    for relative, label in files.items():
        index = seen[label] = seen.get(label, -1) + 1
        sample = LabeledImage(root / relative, LABELS.index(label))
        if index < per_class * 0.6:
            train.append(sample)
        elif index < per_class * 0.8:
            validation.append(sample)
        else:
            test.append(sample)
    return Splits(train, validation, test)


@dataclass(frozen=True)
class Trained:
    result: TrainResult
    splits: Splits
    progress: list[Progress]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("shapes")
    splits = make_splits(root / "data", per_class=40, seed=1)
    progress: list[Progress] = []
    result = train_classifier(
        config=CONFIG,
        labels=LABELS,
        train=splits.train,
        validation=splits.validation,
        test=splits.test,
        output_dir=root / "out",
        on_progress=progress.append,
        device="cpu",
    )
    return Trained(result, splits, progress)


def test_learns_shapes(trained: Trained) -> None:
    result = trained.result
    assert result.evaluation.accuracy > 0.9
    assert result.evaluation.count == len(trained.splits.test)
    assert result.evaluation_split == "test"
    assert result.labels == LABELS
    assert result.device == "cpu"
    assert result.images_per_second > 0
    assert result.seconds > 0
    assert [epoch.epoch for epoch in result.history] == list(range(1, CONFIG.epochs + 1))
    assert result.history[-1].val_accuracy is not None
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_bundle_is_saved(trained: Trained) -> None:
    path = trained.result.bundle_path
    assert path.name == "model.pt"
    bundle = load_bundle(path)
    assert bundle.labels == LABELS
    assert bundle.input_size == CONFIG.input_size
    assert bundle.template == CONFIG.template


def test_evaluation_matches_independent_predictor(trained: Trained) -> None:
    predictor = Predictor.load(trained.result.bundle_path, device="cpu")
    predicted = []
    for sample in trained.splits.test:
        top = predictor.predict(decode_image(sample.path.read_bytes()), top_k=1)[0]
        predicted.append(LABELS.index(top.label))
    truth = [sample.label for sample in trained.splits.test]
    recomputed = evaluate_classification(truth, predicted, LABELS)
    # The confusion matrix pins down every predicted label per class, not just the total.
    assert recomputed.confusion == trained.result.evaluation.confusion
    assert recomputed.accuracy == trained.result.evaluation.accuracy
    assert recomputed == trained.result.evaluation


def test_progress_reports(trained: Trained) -> None:
    progress = trained.progress
    steps_per_epoch = -(-len(trained.splits.train) // CONFIG.batch_size)
    total = steps_per_epoch * CONFIG.epochs
    assert all(p.total_steps == total and p.epochs == CONFIG.epochs for p in progress)
    for before, after in itertools.pairwise(progress):
        assert after.step >= before.step
        assert after.fraction >= before.fraction
        assert after.epoch >= before.epoch
    train_updates = [p for p in progress if p.phase == "train"]
    # One per optimizer step plus one per epoch end carrying that epoch's validation scores.
    assert len(train_updates) == total + CONFIG.epochs
    assert sorted({p.step for p in train_updates}) == list(range(1, total + 1))
    assert [p.phase for p in progress[-2:]] == ["evaluate", "done"]
    last = progress[-1]
    assert last.fraction == 1.0
    assert last.step == total
    assert last.val_accuracy == trained.result.history[-1].val_accuracy
    assert progress[0].val_loss is None  # no epoch finished yet
    assert all(0.0 <= p.fraction <= 1.0 for p in progress)
    assert all(p.train_loss is not None and p.images_per_second >= 0 for p in train_updates)


def _tiny_run(
    root: Path,
    *,
    splits: Splits,
    output: str,
    should_stop: Callable[[], bool] | None = None,
    config: TrainConfig | None = None,
) -> TrainResult:
    return train_classifier(
        config=config or TrainConfig(epochs=2, batch_size=8, seed=7),
        labels=LABELS,
        train=splits.train,
        validation=splits.validation,
        test=splits.test,
        output_dir=root / output,
        should_stop=should_stop,
        device="cpu",
    )


@pytest.fixture(scope="module")
def tiny_splits(tmp_path_factory: pytest.TempPathFactory) -> Splits:
    return make_splits(tmp_path_factory.mktemp("tiny"), per_class=10, seed=2)


def test_same_seed_gives_identical_weights(tmp_path: Path, tiny_splits: Splits) -> None:
    first = _tiny_run(tmp_path, splits=tiny_splits, output="a")
    second = _tiny_run(tmp_path, splits=tiny_splits, output="b")
    weights_a = load_bundle(first.bundle_path).state_dict
    weights_b = load_bundle(second.bundle_path).state_dict
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[key], weights_b[key]) for key in weights_a)
    assert first.history[-1].train_loss == second.history[-1].train_loss


def test_should_stop_cancels_without_writing_a_model(tmp_path: Path, tiny_splits: Splits) -> None:
    calls = 0

    def stop_on_third_check() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 3

    with pytest.raises(TrainingCancelled):
        _tiny_run(tmp_path, splits=tiny_splits, output="out", should_stop=stop_on_third_check)
    assert calls == 3
    assert not (tmp_path / "out" / "model.pt").exists()


def test_falls_back_to_validation_then_train_for_evaluation(
    tmp_path: Path, tiny_splits: Splits
) -> None:
    config = TrainConfig(epochs=1, batch_size=16, seed=3)
    no_test = Splits(tiny_splits.train, tiny_splits.validation, [])
    result = _tiny_run(tmp_path, splits=no_test, output="v", config=config)
    assert result.evaluation_split == "validation"
    assert result.evaluation.count == len(tiny_splits.validation)

    train_only = Splits(tiny_splits.train, [], [])
    result = _tiny_run(tmp_path, splits=train_only, output="t", config=config)
    assert result.evaluation_split == "train"
    assert result.evaluation.count == len(tiny_splits.train)
    assert result.history[0].val_loss is None
    assert result.history[0].val_accuracy is None


def test_empty_training_split_is_rejected(tmp_path: Path, tiny_splits: Splits) -> None:
    with pytest.raises(ValueError, match="the training split is empty"):
        _tiny_run(tmp_path, splits=Splits([], tiny_splits.validation, tiny_splits.test), output="o")


def test_label_out_of_range_is_rejected(tmp_path: Path, tiny_splits: Splits) -> None:
    bad = LabeledImage(tiny_splits.train[0].path, len(LABELS))
    for splits in (
        Splits([*tiny_splits.train, bad], [], []),
        Splits(tiny_splits.train, [], [LabeledImage(bad.path, -1)]),
    ):
        with pytest.raises(ValueError, match="outside"):
            _tiny_run(tmp_path, splits=splits, output="o")


@pytest.mark.parametrize(
    "overrides",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"learning_rate": 0.0},
        {"input_size": 8},
        {"template": "x"},
    ],
)
def test_invalid_config_is_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrainConfig(**overrides)  # type: ignore[arg-type]


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device(None).type == expected
    with pytest.raises(ValueError):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            pick_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_and_predicts_on_cuda(tmp_path: Path, tiny_splits: Splits) -> None:
    result = _tiny_run(
        tmp_path, splits=tiny_splits, output="gpu", config=TrainConfig(epochs=3, batch_size=8)
    )
    assert result.device.startswith("cuda")
    predictor = Predictor.load(result.bundle_path)
    assert predictor.device.type == "cuda"
    image = decode_image(tiny_splits.test[0].path.read_bytes())
    assert len(predictor.predict(image)) == 3
