"""Training an image classifier from labelled files, with progress, cancellation and resume.

Every split is decoded once and held where the model computes (:mod:`workers.ml.image_split`),
so each step only indexes, augments and normalises a batch on the device. The knobs are
:class:`workers.ml.config.TrainConfig`'s; the epoch loop (shuffling, progress, validation, early
stopping, checkpoints, resume) lives in :mod:`workers.ml.loop`, shared with tabular regression.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workers.ml.architectures import build_model, cached_pretrained_path, load_pretrained
from workers.ml.checkpoint import ModelBundle, save_bundle
from workers.ml.config import TrainConfig
from workers.ml.data import LabeledImage, load_images
from workers.ml.device import pick_device
from workers.ml.image_split import HeldSplits, ImageSplit, evaluate_split
from workers.ml.image_step import Compute, train_step
from workers.ml.knobs import ConfigError
from workers.ml.loop import (
    EpochResult,
    LoopOutcome,
    Progress,
    TrainingCancelled,
    run_epochs,
    steps_per_epoch,
)
from workers.ml.metrics import Evaluation, evaluate_classification
from workers.ml.optimization import balanced_class_weights, build_optimizer, build_schedule
from workers.ml.resume import (
    CHECKPOINT_FILENAME,
    checkpoint_to_resume,
    fingerprint,
    remove_torn_writes,
)

__all__ = [
    "BUNDLE_FILENAME",
    "CHECKPOINT_FILENAME",
    "ConfigError",
    "EpochResult",
    "Progress",
    "TrainConfig",
    "TrainResult",
    "TrainingCancelled",
    "pick_device",
    "train_classifier",
]

logger = logging.getLogger(__name__)

BUNDLE_FILENAME = "model.pt"


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_classifier`.

    ``evaluation_split`` says which split ``evaluation`` was computed on: "test" normally,
    "validation" or "train" when the test (and validation) split was empty; the indices in
    ``evaluation.mistakes`` point into that split's sequence as it was passed in.
    ``images_per_second`` is training throughput (optimizer passes only, over all attempts).
    ``device`` is "cuda" or "cpu"; ``gpu_seconds`` is this call's wall time on a GPU (0.0 on the
    CPU), for usage accounting. ``seconds`` is this call's wall time.

    ``history`` has every epoch trained, including those of an earlier attempt when resumed
    (``resumed_from_epoch`` > 0 is the last epoch that came from the checkpoint).
    ``best_epoch`` is the epoch whose weights were kept when early stopping was on (else None);
    ``stopped_early`` says training ended before ``config.epochs``. ``input_size`` is the
    resolved image size the bundle expects. ``pretrained_from`` is the weights file training
    started from (None for random initialisation or when resumed from a checkpoint).
    """

    bundle_path: Path
    labels: list[str]
    history: list[EpochResult]
    evaluation: Evaluation
    device: str
    seconds: float
    images_per_second: float
    evaluation_split: str = "test"
    gpu_seconds: float = 0.0
    input_size: int = 32
    best_epoch: int | None = None
    stopped_early: bool = False
    resumed_from_epoch: int = 0
    pretrained_from: str | None = None
    checkpoint_path: Path | None = None


def train_classifier(
    *,
    config: TrainConfig,
    labels: list[str],
    train: Sequence[LabeledImage],
    validation: Sequence[LabeledImage],
    test: Sequence[LabeledImage],
    output_dir: Path,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool | Path = False,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> TrainResult:
    """Train a classifier and save it as ``output_dir / "model.pt"``.

    Optimizer, schedule, loss and augmentation follow ``config`` (defaults: AdamW, one-cycle,
    cross-entropy, random horizontal flips). Python's, numpy's and torch's global RNGs are
    seeded from ``config.seed`` (weight init and dropout draw from them); shuffling and
    augmentation draw from a private CPU generator seeded the same way. On the CPU the same
    config, data, seed and torch thread count give bit-identical weights; on CUDA
    (channels_last, bf16 autocast, cuDNN autotuning) results are close but not bit-identical.

    The final evaluation runs on ``test``; if ``test`` is empty it runs on ``validation``, and if
    that is empty too, on ``train`` (then it only shows the model fits its training data).
    ``TrainResult.evaluation_split`` names the split used. An empty ``validation`` leaves the
    ``val_*`` values None and turns early stopping off.

    ``on_progress`` is called after every optimizer step, once more at the end of each epoch
    with that epoch's validation scores (after its checkpoint is written), then with phase
    "evaluate" and finally "done"; it should return quickly (throttle database writes in the
    caller). ``should_stop`` is checked before every step; when it returns True,
    :class:`TrainingCancelled` is raised and no model file is written.

    Checkpoints: after every epoch ``checkpoint_dir / "checkpoint.pt"`` (``checkpoint_dir``
    defaults to ``output_dir``) is rewritten atomically, then ``on_checkpoint(path)`` is called
    (e.g. to copy it to object storage; it blocks training while it runs). With ``resume=True``
    a checkpoint found there is continued after its last finished epoch, so a killed worker
    repeats at most the epoch it was in; ``resume`` may also be the path of a checkpoint file
    to continue from. Without a checkpoint, ``resume=True`` starts afresh. A checkpoint of
    another config or other data raises ValueError; an unreadable one is ignored (logged).

    Raises:
        ValueError: for an empty training split, bad labels, a label index out of range,
            unusable pretrained weights (ConfigError naming ``pretrained_path``), or a
            checkpoint of another run.
        ImageDecodeError: if an image file cannot be decoded.
        FileNotFoundError: if ``resume`` names a checkpoint file that does not exist.
        TrainingCancelled: see ``should_stop``.
    """
    started = time.perf_counter()
    _check_inputs(labels, train=train, validation=validation, test=test)
    target = pick_device(device)
    input_size = int(config.input_size)  # type: ignore[arg-type]
    _seed_everything(config.seed)

    checkpoint_path = Path(checkpoint_dir or output_dir) / CHECKPOINT_FILENAME
    splits, identity, restored = _load_splits(
        config, labels, (train, validation, test), target, checkpoint_path, resume
    )
    compute = Compute.on(target)

    model = build_model(config.template, num_classes=len(labels))
    pretrained_from = None if restored else _load_pretrained(model, config)
    # Module.to accepts memory_format (as Tensor.to does); torch's overloads do not list it.
    model.to(device=target, memory_format=compute.memory_format)  # type: ignore[call-overload]
    outcome = _fit(
        config,
        model,
        splits,
        compute,
        n_labels=len(labels),
        checkpoint_path=checkpoint_path,
        identity=identity,
        restored=restored,
        on_progress=on_progress,
        should_stop=should_stop,
        on_checkpoint=on_checkpoint,
    )
    _log_epochs(outcome, config.epochs)
    if should_stop is not None and should_stop():
        raise TrainingCancelled("training was cancelled before the final evaluation")

    _report_final("evaluate", outcome, config.epochs, on_progress)
    evaluation = _evaluate_final(model, splits.evaluation, labels, config, compute)
    bundle_path = _save_model(
        Path(output_dir) / BUNDLE_FILENAME, model, config, labels, identity, outcome
    )
    _report_final("done", outcome, config.epochs, on_progress)
    seconds = time.perf_counter() - started
    return TrainResult(
        bundle_path=bundle_path,
        labels=list(labels),
        history=outcome.history,
        evaluation=evaluation,
        device=target.type,
        seconds=seconds,
        images_per_second=outcome.samples_per_second,
        evaluation_split=splits.evaluation_split,
        gpu_seconds=seconds if compute.on_cuda else 0.0,
        input_size=input_size,
        best_epoch=outcome.best_epoch,
        stopped_early=outcome.stopped_early,
        resumed_from_epoch=outcome.resumed_from_epoch,
        pretrained_from=pretrained_from,
        checkpoint_path=checkpoint_path,
    )


def _load_splits(
    config: TrainConfig,
    labels: list[str],
    samples: tuple[Sequence[LabeledImage], Sequence[LabeledImage], Sequence[LabeledImage]],
    target: torch.device,
    checkpoint_path: Path,
    resume: bool | Path,
) -> tuple[HeldSplits, dict[str, Any], dict[str, Any] | None]:
    """Decode the (train, validation, test) samples; the run's identity; the checkpoint to resume.

    Decoded on the CPU first: the fingerprint hashes the pixels, so a resumed run is refused
    when the images changed, wherever they were copied from.
    """
    train, validation, test = samples
    input_size = int(config.input_size)  # type: ignore[arg-type]
    x_train, y_train = load_images(train, input_size)
    x_val, y_val = load_images(validation, input_size)
    x_test, y_test = load_images(test, input_size)
    identity = {
        "kind": "image-classification",
        "config": {k: v for k, v in config.to_dict().items() if k != "pretrained_path"},
        "data": fingerprint(labels, x_train, y_train, x_val, y_val),
    }
    restored = checkpoint_to_resume(resume, checkpoint_path, identity)
    splits = HeldSplits.hold(
        (x_train, y_train),
        (x_val, y_val),
        (x_test, y_test),
        target,
        has_validation=bool(validation),
        has_test=bool(test),
    )
    return splits, identity, restored


def _fit(
    config: TrainConfig,
    model: nn.Module,
    splits: HeldSplits,
    compute: Compute,
    *,
    n_labels: int,
    checkpoint_path: Path,
    identity: dict[str, Any],
    restored: dict[str, Any] | None,
    on_progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    on_checkpoint: Callable[[Path], None] | None,
) -> LoopOutcome:
    """Set up the optimizer, schedule, step and validation, and run the epochs."""
    n_train = len(splits.train)
    optimizer, scheduler = _optimization(config, model, n_train, fused=compute.on_cuda)
    generator = torch.Generator().manual_seed(config.seed)
    class_weight = (
        balanced_class_weights(splits.train.labels_cpu, n_labels).to(compute.target)
        if config.class_weights == "balanced"
        else None
    )
    step = train_step(
        model,
        optimizer,
        scheduler,
        splits.train,
        generator=generator,
        augmentation=config.augmentation,
        class_weight=class_weight,
        label_smoothing=config.label_smoothing,
        compute=compute,
    )

    def validate() -> tuple[float, float | None]:
        loss, accuracy, _, _ = evaluate_split(
            model,
            splits.validation,
            batch_size=2 * config.batch_size,
            memory_format=compute.memory_format,
        )
        return loss, accuracy

    remove_torn_writes(checkpoint_path)
    return run_epochs(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        generator=generator,
        n_train=n_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        step=step,
        validate=validate if len(splits.validation) else None,
        patience=config.early_stopping_patience,
        device=compute.target,
        index_device=splits.train.index_device,
        checkpoint_path=checkpoint_path,
        identity=identity,
        restored=restored,
        on_progress=on_progress,
        should_stop=should_stop,
        on_checkpoint=on_checkpoint,
    )


def _optimization(
    config: TrainConfig, model: nn.Module, n_train: int, *, fused: bool
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    optimizer = build_optimizer(
        model,
        name=config.optimizer,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=fused,
    )
    # The schedule spans every epoch asked for; early stopping just leaves its tail unused.
    scheduler = build_schedule(
        optimizer,
        name=config.schedule,
        learning_rate=config.learning_rate,
        total_steps=steps_per_epoch(n_train, config.batch_size) * config.epochs,
    )
    return optimizer, scheduler


def _log_epochs(outcome: LoopOutcome, epochs: int) -> None:
    for epoch in outcome.history[outcome.resumed_from_epoch :]:
        logger.info(
            "epoch %d/%d: train loss %.4f acc %.3f, val loss %s acc %s (%.1fs)",
            epoch.epoch,
            epochs,
            epoch.train_loss,
            epoch.train_accuracy or 0.0,
            "-" if epoch.val_loss is None else f"{epoch.val_loss:.4f}",
            "-" if epoch.val_accuracy is None else f"{epoch.val_accuracy:.3f}",
            epoch.seconds,
        )


def _report_final(
    phase: str,
    outcome: LoopOutcome,
    epochs: int,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    """Report ``phase`` ("evaluate" or "done") after training, with the last epoch's scores."""
    if on_progress is None:
        return
    last = outcome.history[-1]
    on_progress(
        Progress(
            phase=phase,
            epoch=last.epoch,
            epochs=epochs,
            step=outcome.step,
            total_steps=outcome.total_steps,
            fraction=1.0,
            train_loss=last.train_loss,
            train_accuracy=last.train_accuracy,
            val_loss=last.val_loss,
            val_accuracy=last.val_accuracy,
            images_per_second=outcome.samples_per_second,
            eta_seconds=0.0,
        )
    )


def _save_model(
    path: Path,
    model: nn.Module,
    config: TrainConfig,
    labels: list[str],
    identity: dict[str, Any],
    outcome: LoopOutcome,
) -> Path:
    save_bundle(
        ModelBundle(
            template=config.template,
            labels=list(labels),
            input_size=int(config.input_size),  # type: ignore[arg-type]
            state_dict=model.state_dict(),
            metadata={"config": identity["config"], "best_epoch": outcome.best_epoch},
        ),
        path,
    )
    return path


def _evaluate_final(
    model: nn.Module,
    data: ImageSplit,
    labels: list[str],
    config: TrainConfig,
    compute: Compute,
) -> Evaluation:
    _, _, predictions, confidences = evaluate_split(
        model, data, batch_size=2 * config.batch_size, memory_format=compute.memory_format
    )
    return evaluate_classification(
        data.labels_cpu.tolist(),
        predictions.tolist(),
        labels,
        confidences=confidences.tolist(),
    )


def _load_pretrained(model: nn.Module, config: TrainConfig) -> str | None:
    if config.pretrained_path is not None:
        path: Path | None = Path(config.pretrained_path)
    elif config.pretrained:
        path = cached_pretrained_path(config.template)
    else:
        path = None
    if path is None:
        return None
    try:
        load_pretrained(model, config.template, path)
    except (OSError, ValueError) as exc:
        raise ConfigError("pretrained_path", f"pretrained weights cannot be used: {exc}") from exc
    logger.info("starting from pretrained weights %s", path)
    return str(path)


def _check_inputs(
    labels: Sequence[str],
    *,
    train: Sequence[LabeledImage],
    validation: Sequence[LabeledImage],
    test: Sequence[LabeledImage],
) -> None:
    if not labels:
        raise ValueError("labels must not be empty")
    if not all(isinstance(label, str) and label for label in labels):
        raise ValueError("labels must be non-empty strings")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be unique")
    if not train:
        raise ValueError("the training split is empty")
    for split, samples in (("training", train), ("validation", validation), ("test", test)):
        for sample in samples:
            if isinstance(sample.label, bool) or not 0 <= sample.label < len(labels):
                raise ValueError(
                    f"{sample.display_name} in the {split} split has label index "
                    f"{sample.label!r}, outside 0..{len(labels) - 1}"
                )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    # numpy's legacy seed only accepts 0..2**32-1; fold larger or negative seeds into range.
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
