"""End-to-end training on generated shapes: accuracy, agreement with the Predictor, progress,
cancellation, determinism and input validation. Sized to run in seconds on two CPU cores."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.support.shapes import SHAPE_CLASSES, write_class_folders
from workers.ml.architectures import IMAGE_TEMPLATES
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

REPO_ROOT = Path(__file__).resolve().parents[3]
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
    assert result.gpu_seconds == 0.0
    assert result.input_size == 32
    assert result.best_epoch is None and not result.stopped_early
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
    predicted, confidences = [], []
    for sample in trained.splits.test:
        top = predictor.predict(decode_image(sample.path.read_bytes()), top_k=1)[0]
        predicted.append(LABELS.index(top.label))
        confidences.append(top.probability)
    truth = [sample.label for sample in trained.splits.test]
    recomputed = evaluate_classification(truth, predicted, LABELS, confidences=confidences)
    evaluation = trained.result.evaluation
    # The confusion matrix pins down every predicted label per class, not just the total.
    assert recomputed.confusion == evaluation.confusion
    assert recomputed.accuracy == evaluation.accuracy
    assert recomputed.weighted_f1 == evaluation.weighted_f1
    assert [m["index"] for m in recomputed.mistakes] == [m["index"] for m in evaluation.mistakes]
    for mine, theirs in zip(recomputed.mistakes, evaluation.mistakes, strict=True):
        assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=1e-5)
        assert (mine["true"], mine["predicted"]) == (theirs["true"], theirs["predicted"])


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
    assert progress[0].eta_seconds is not None and progress[0].eta_seconds > 0
    assert progress[-1].eta_seconds == 0.0


def _tiny_run(
    root: Path,
    *,
    splits: Splits,
    output: str,
    should_stop: Callable[[], bool] | None = None,
    config: TrainConfig | None = None,
    device: str = "cpu",
) -> TrainResult:
    return train_classifier(
        config=config or TrainConfig(epochs=2, batch_size=8, seed=7),
        labels=LABELS,
        train=splits.train,
        validation=splits.validation,
        test=splits.test,
        output_dir=root / output,
        should_stop=should_stop,
        device=device,
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
    assert not (tmp_path / "out" / "checkpoint.pt").exists()  # no epoch finished


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


# "leptonnet" is built by the same code as "leptonnet-s", which the other tests train anyway.
@pytest.mark.parametrize("template", sorted(set(IMAGE_TEMPLATES) - {"leptonnet"}))
def test_every_template_trains_a_few_steps_and_serves(
    tmp_path: Path, tiny_splits: Splits, template: str
) -> None:
    config = TrainConfig(template=template, epochs=1, batch_size=8, input_size=32, pretrained=False)
    result = _tiny_run(tmp_path, splits=tiny_splits, output="out", config=config)
    assert len(result.history) == 1
    assert result.evaluation.count == len(tiny_splits.test)
    bundle = load_bundle(result.bundle_path)
    assert bundle.template == template
    assert bundle.metadata["config"]["template"] == template
    predictor = Predictor.load(result.bundle_path, device="cpu")
    image = decode_image(tiny_splits.test[0].path.read_bytes())
    assert len(predictor.predict(image, top_k=2)) == 2


def test_every_knob_at_once_trains_deterministically(tmp_path: Path, tiny_splits: Splits) -> None:
    config = TrainConfig(
        epochs=2,
        batch_size=8,
        seed=11,
        optimizer="sgd",
        learning_rate=0.05,
        schedule="cosine",
        label_smoothing=0.1,
        crop_padding=3,
        scale_min=0.6,
        brightness=0.3,
        contrast=0.3,
        saturation=0.3,
        greyscale_probability=0.2,
        class_weights="balanced",
    )
    first = _tiny_run(tmp_path, splits=tiny_splits, output="a", config=config)
    second = _tiny_run(tmp_path, splits=tiny_splits, output="b", config=config)
    plain = _tiny_run(
        tmp_path,
        splits=tiny_splits,
        output="c",
        config=TrainConfig(epochs=2, batch_size=8, seed=11),
    )
    assert all(math.isfinite(epoch.train_loss) for epoch in first.history)
    weights = [load_bundle(r.bundle_path).state_dict for r in (first, second, plain)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path, tiny_splits: Splits) -> None:
    # Validation images with the wrong labels: the better the model learns the training
    # images, the worse its validation loss, so patience runs out after the first epochs.
    wrong = [LabeledImage(s.path, (s.label + 1) % len(LABELS)) for s in tiny_splits.train]
    splits = Splits(tiny_splits.train, wrong, tiny_splits.test)
    config = TrainConfig(epochs=8, batch_size=8, seed=3, early_stopping_patience=2)
    result = _tiny_run(tmp_path, splits=splits, output="o", config=config)
    assert result.stopped_early
    val_losses = [epoch.val_loss for epoch in result.history]
    best = val_losses.index(min(val_losses)) + 1
    assert result.best_epoch == best
    assert len(result.history) == best + config.early_stopping_patience < config.epochs

    # The saved model is the best epoch's: its validation loss, recomputed independently.
    predictor = Predictor.load(result.bundle_path, device="cpu")
    images = [decode_image(s.path.read_bytes()) for s in wrong]
    ranked = predictor.predict_batch(images, top_k=len(LABELS))
    loss = -sum(
        math.log(next(p.probability for p in r if p.label == LABELS[s.label]))
        for r, s in zip(ranked, wrong, strict=True)
    ) / len(wrong)
    assert loss == pytest.approx(min(val_losses), rel=1e-4)


def test_cached_pretrained_weights_are_used_when_present(
    tmp_path: Path, tiny_splits: Splits, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.models import mobilenet_v3_small

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    weights = checkpoints / "mobilenet_v3_small-047dcff4.pth"
    torch.save(mobilenet_v3_small(weights=None).state_dict(), weights)

    config = TrainConfig(template="mobilenet_v3_small", epochs=1, batch_size=8, input_size=32)
    result = _tiny_run(tmp_path, splits=tiny_splits, output="a", config=config)
    assert result.pretrained_from == str(weights)
    off = TrainConfig(**(config.to_dict() | {"pretrained": False}))
    assert _tiny_run(tmp_path, splits=tiny_splits, output="b", config=off).pretrained_from is None

    given = TrainConfig(**(off.to_dict() | {"pretrained_path": str(tmp_path / "none.pt")}))
    with pytest.raises(ValueError, match="pretrained weights cannot be used") as caught:
        _tiny_run(tmp_path, splits=tiny_splits, output="c", config=given)
    assert caught.value.field == "pretrained_path"  # type: ignore[attr-defined]


OFFLINE_PROBE = """
import sys
events = []
sys.addaudithook(lambda name, args: events.append(name) if name.startswith(
    ("socket.", "urllib.", "http.")) else None)
from pathlib import Path
import torch
torch.set_num_threads(1)
from tests.support.shapes import SHAPE_CLASSES, write_class_folders
from workers.ml.architectures import IMAGE_TEMPLATES, build_model, cached_pretrained_path
from workers.ml.data import LabeledImage
from workers.ml.trainer import TrainConfig, train_classifier
root = Path(sys.argv[1])
for template in IMAGE_TEMPLATES:
    assert cached_pretrained_path(template) is None, template
    build_model(template, num_classes=3)
files = write_class_folders(root / "data", per_class=3, seed=0, size=32)
samples = [LabeledImage(root / "data" / f, SHAPE_CLASSES.index(l)) for f, l in files.items()]
# MobileNet stands for both torchvision templates: the trainer looks both up the same way.
result = train_classifier(
    config=TrainConfig(template="mobilenet_v3_small", epochs=1, batch_size=4, input_size=32),
    labels=list(SHAPE_CLASSES), train=samples, validation=[], test=[],
    output_dir=root / "out", device="cpu",
)
assert result.pretrained_from is None, result.pretrained_from
hub = Path(torch.hub.get_dir())
assert not hub.exists() or not any(hub.rglob("*")), list(hub.rglob("*"))
assert events == [], events
print("offline ok")
"""


def test_torchvision_templates_train_offline_with_an_empty_cache(tmp_path: Path) -> None:
    # A fresh interpreter with an audit hook sees any socket or URL opened, without mocks.
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE, str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "offline ok" in completed.stdout


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
        tmp_path,
        splits=tiny_splits,
        output="gpu",
        config=TrainConfig(epochs=3, batch_size=8),
        device="cuda",
    )
    assert result.device == "cuda"
    assert result.gpu_seconds > 0
    predictor = Predictor.load(result.bundle_path)
    assert predictor.device.type == "cuda"
    image = decode_image(tiny_splits.test[0].path.read_bytes())
    assert len(predictor.predict(image)) == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augmentation_and_resume_on_cuda(tmp_path: Path, tiny_splits: Splits) -> None:
    config = TrainConfig(
        epochs=3,
        batch_size=8,
        crop_padding=2,
        scale_min=0.5,
        brightness=0.2,
        contrast=0.2,
        saturation=0.2,
        greyscale_probability=0.2,
        class_weights="balanced",
        early_stopping_patience=5,
    )
    checks = 0

    def stop_in_epoch_two() -> bool:
        nonlocal checks
        checks += 1
        return checks > 4

    with pytest.raises(TrainingCancelled):
        _tiny_run(
            tmp_path,
            splits=tiny_splits,
            output="o",
            config=config,
            should_stop=stop_in_epoch_two,
            device="cuda",
        )
    result = train_classifier(
        config=config,
        labels=LABELS,
        train=tiny_splits.train,
        validation=tiny_splits.validation,
        test=tiny_splits.test,
        output_dir=tmp_path / "o",
        resume=True,
    )
    assert result.device == "cuda"
    assert result.resumed_from_epoch == 1
    assert [epoch.epoch for epoch in result.history] == [1, 2, 3]
    assert all(math.isfinite(epoch.train_loss) for epoch in result.history)
