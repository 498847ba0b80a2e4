"""Training an image classifier from labelled files, with progress reporting and cancellation.

Data sets here are small (hundreds to a few thousand images), so every split is decoded once,
held in memory as uint8 and moved to the device once; each step then only indexes, flips and
normalises a batch on the device, and nothing else competes with the model for time.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.ml.architectures import TEMPLATES, build_model
from workers.ml.checkpoint import ModelBundle, save_bundle
from workers.ml.data import LabeledImage, load_images, normalize
from workers.ml.metrics import Evaluation, evaluate_classification

__all__ = [
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
MIN_INPUT_SIZE = 16
MAX_INPUT_SIZE = 512
# On CUDA, reading the running loss forces a device sync; refresh it at most this often.
_CUDA_STATS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run. Invalid values raise ValueError on creation."""

    template: str = "leptonnet"
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 3e-3
    input_size: int = 32
    weight_decay: float = 5e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            allowed = ", ".join(sorted(TEMPLATES))
            raise ValueError(f"unknown model template {self.template!r}; allowed: {allowed}")
        if self.epochs < 1:
            raise ValueError("epochs must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError("learning_rate must be a positive number")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError("weight_decay must be zero or positive")
        if not MIN_INPUT_SIZE <= self.input_size <= MAX_INPUT_SIZE:
            raise ValueError(
                f"input_size must be between {MIN_INPUT_SIZE} and {MAX_INPUT_SIZE} pixels"
            )


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running training job, passed to ``on_progress``.

    ``phase`` is "train", "evaluate" or "done"; ``epoch`` is 1-based; ``step`` counts optimizer
    steps so far out of ``total_steps``; ``fraction`` is overall completion in 0..1.
    ``train_loss``/``train_accuracy`` are running means over the current epoch; ``val_loss``/
    ``val_accuracy`` belong to the last finished epoch (None before one finished, or without a
    validation split). On CUDA the running means may lag a few steps behind ``step``, because
    reading them every step would stall the GPU.
    """

    phase: str
    epoch: int
    epochs: int
    step: int
    total_steps: int
    fraction: float
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    images_per_second: float


@dataclass(frozen=True)
class EpochResult:
    """Summary of one finished epoch."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_classifier`.

    ``evaluation_split`` says which split ``evaluation`` was computed on: "test" normally,
    "validation" or "train" when the test (and validation) split was empty.
    ``images_per_second`` is training throughput (optimizer passes only).
    """

    bundle_path: Path
    labels: list[str]
    history: list[EpochResult]
    evaluation: Evaluation
    device: str
    seconds: float
    images_per_second: float
    evaluation_split: str = "test"


class TrainingCancelled(Exception):
    """Raised by :func:`train_classifier` when ``should_stop`` returned True."""


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to compute on.

    ``None``, "" or "auto" pick CUDA when available, else the CPU. An explicit "cpu", "cuda" or
    "cuda:N" is honoured, and raises ValueError if that device does not exist here.
    """
    if requested is None or requested in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    try:
        chosen = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {requested!r}") from exc
    if chosen.type == "cpu":
        return torch.device("cpu")
    if chosen.type != "cuda":
        raise ValueError(f"unsupported device {requested!r}; use 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} was requested but CUDA is not available")
    index = torch.cuda.current_device() if chosen.index is None else chosen.index
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {requested!r} does not exist here")
    return torch.device("cuda", index)


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
) -> TrainResult:
    """Train a classifier and save it as ``output_dir / "model.pt"``.

    AdamW with a one-cycle learning-rate schedule over all steps, cross-entropy loss, and a
    seeded random horizontal flip as the only augmentation. Python's, numpy's and torch's
    global RNGs are seeded from ``config.seed`` (weight init and dropout draw from them). On
    the CPU the same config, data, seed and torch thread count give bit-identical weights; on
    CUDA (channels_last, bf16 autocast, cuDNN autotuning) results are close but not
    bit-identical.

    The final evaluation runs on ``test``; if ``test`` is empty it runs on ``validation``, and if
    that is empty too, on ``train`` (then it only shows the model fits its training data).
    ``TrainResult.evaluation_split`` names the split used. An empty ``validation`` leaves the
    ``val_*`` values None.

    ``on_progress`` is called after every optimizer step, once more at the end of each epoch
    with that epoch's validation scores, then with phase "evaluate" and finally "done"; it
    should return quickly (throttle database writes in the caller). ``should_stop`` is checked
    before every step; when it returns True, :class:`TrainingCancelled` is raised and no model
    file is written.

    Raises:
        ValueError: for an empty training split, bad labels, or a label index out of range.
        ImageDecodeError: if an image file cannot be decoded.
        TrainingCancelled: see ``should_stop``.
    """
    started = time.perf_counter()
    _check_inputs(labels, train=train, validation=validation, test=test)
    target = pick_device(device)
    on_cuda = target.type == "cuda"
    _seed_everything(config.seed)

    x_train, y_train = _load_split(train, config.input_size, target)
    x_val, y_val = _load_split(validation, config.input_size, target)
    if test:
        eval_split = "test"
        x_eval, y_eval = _load_split(test, config.input_size, target)
    elif validation:
        eval_split, x_eval, y_eval = "validation", x_val, y_val
    else:
        eval_split, x_eval, y_eval = "train", x_train, y_train

    if on_cuda:
        # Input sizes are fixed for the whole run, so autotuning pays off after a few steps.
        torch.backends.cudnn.benchmark = True
    memory_format = torch.channels_last if on_cuda else torch.contiguous_format
    use_bf16 = on_cuda and torch.cuda.is_bf16_supported()

    model = build_model(config.template, num_classes=len(labels))
    model.to(device=target, memory_format=memory_format)
    optimizer = torch.optim.AdamW(
        _param_groups(model, config.weight_decay),
        lr=config.learning_rate,
        **({"fused": True} if on_cuda else {}),
    )
    n_train = int(y_train.numel())
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=total_steps
    )
    # A private CPU generator drives shuffling and flips, so they are reproducible on any
    # device and independent of whatever else uses the global RNG.
    generator = torch.Generator().manual_seed(config.seed)

    history: list[EpochResult] = []
    step = 0
    images_trained = 0
    train_seconds = 0.0
    val_loss: float | None = None
    val_accuracy: float | None = None

    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_started = time.perf_counter()
        order = torch.randperm(n_train, generator=generator).to(target)
        flips = (torch.rand(n_train, generator=generator) < 0.5).to(target)
        loss_sum = torch.zeros((), dtype=torch.float32, device=target)
        correct = torch.zeros((), dtype=torch.int64, device=target)
        seen = 0
        running_loss: float | None = None
        running_accuracy: float | None = None
        stats_read_at = -math.inf

        for start in range(0, n_train, config.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"training was cancelled at step {step} of {total_steps}")
            index = order[start : start + config.batch_size]
            flip = flips[start : start + config.batch_size].view(-1, 1, 1, 1)
            batch = x_train.index_select(0, index)
            batch = torch.where(flip, batch.flip(3), batch)
            targets = y_train.index_select(0, index)
            inputs = normalize(batch).contiguous(memory_format=memory_format)

            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
                logits = model(inputs)
                loss = F.cross_entropy(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()

            step += 1
            count = int(targets.numel())
            seen += count
            images_trained += count
            loss_sum += loss.detach() * count
            correct += (logits.detach().argmax(dim=1) == targets).sum()

            if on_progress is not None:
                now = time.perf_counter()
                last_of_epoch = start + config.batch_size >= n_train
                if not on_cuda or last_of_epoch or now - stats_read_at >= _CUDA_STATS_INTERVAL_S:
                    running_loss = loss_sum.item() / seen
                    running_accuracy = correct.item() / seen
                    stats_read_at = now
                elapsed = train_seconds + (now - epoch_started)
                on_progress(
                    Progress(
                        phase="train",
                        epoch=epoch,
                        epochs=config.epochs,
                        step=step,
                        total_steps=total_steps,
                        fraction=step / total_steps,
                        train_loss=running_loss,
                        train_accuracy=running_accuracy,
                        val_loss=val_loss,
                        val_accuracy=val_accuracy,
                        images_per_second=_rate(images_trained, elapsed),
                    )
                )

        # .item() also waits for queued GPU work, so the epoch time below is real.
        epoch_loss = loss_sum.item() / seen
        epoch_accuracy = correct.item() / seen
        train_seconds += time.perf_counter() - epoch_started

        if y_val.numel() > 0:
            val_loss, val_accuracy, _ = _evaluate(
                model, x_val, y_val, batch_size=2 * config.batch_size, memory_format=memory_format
            )
        epoch_result = EpochResult(
            epoch=epoch,
            train_loss=epoch_loss,
            train_accuracy=epoch_accuracy,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            seconds=time.perf_counter() - epoch_started,
        )
        history.append(epoch_result)
        logger.info(
            "epoch %d/%d: train loss %.4f acc %.3f, val loss %s acc %s (%.1fs)",
            epoch,
            config.epochs,
            epoch_loss,
            epoch_accuracy,
            "-" if val_loss is None else f"{val_loss:.4f}",
            "-" if val_accuracy is None else f"{val_accuracy:.3f}",
            epoch_result.seconds,
        )
        if on_progress is not None:
            on_progress(
                Progress(
                    phase="train",
                    epoch=epoch,
                    epochs=config.epochs,
                    step=step,
                    total_steps=total_steps,
                    fraction=step / total_steps,
                    train_loss=epoch_loss,
                    train_accuracy=epoch_accuracy,
                    val_loss=val_loss,
                    val_accuracy=val_accuracy,
                    images_per_second=_rate(images_trained, train_seconds),
                )
            )

    if should_stop is not None and should_stop():
        raise TrainingCancelled("training was cancelled before the final evaluation")
    throughput = _rate(images_trained, train_seconds)
    last = history[-1]

    def report(phase: str) -> None:
        if on_progress is not None:
            on_progress(
                Progress(
                    phase=phase,
                    epoch=config.epochs,
                    epochs=config.epochs,
                    step=step,
                    total_steps=total_steps,
                    fraction=1.0,
                    train_loss=last.train_loss,
                    train_accuracy=last.train_accuracy,
                    val_loss=val_loss,
                    val_accuracy=val_accuracy,
                    images_per_second=throughput,
                )
            )

    report("evaluate")
    _, _, predictions = _evaluate(
        model, x_eval, y_eval, batch_size=2 * config.batch_size, memory_format=memory_format
    )
    evaluation = evaluate_classification(y_eval.tolist(), predictions.tolist(), labels)

    bundle_path = Path(output_dir) / BUNDLE_FILENAME
    save_bundle(
        ModelBundle(
            template=config.template,
            labels=list(labels),
            input_size=config.input_size,
            state_dict=model.state_dict(),
        ),
        bundle_path,
    )
    report("done")
    return TrainResult(
        bundle_path=bundle_path,
        labels=list(labels),
        history=history,
        evaluation=evaluation,
        device=str(target),
        seconds=time.perf_counter() - started,
        images_per_second=throughput,
        evaluation_split=eval_split,
    )


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
                    f"{Path(sample.path).name} in the {split} split has label index "
                    f"{sample.label!r}, outside 0..{len(labels) - 1}"
                )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    # numpy's legacy seed only accepts 0..2**32-1; fold larger or negative seeds into range.
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _load_split(
    samples: Sequence[LabeledImage], input_size: int, target: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_images(samples, input_size)
    if target.type == "cuda":
        # Pinned memory lets the one big host-to-device copy run at full bandwidth.
        images, labels = images.pin_memory(), labels.pin_memory()
    return images.to(target, non_blocking=True), labels.to(target, non_blocking=True)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    # Decaying BatchNorm scales and biases only fights normalisation; decay weights only.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int,
    memory_format: torch.memory_format,
) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy and CPU predictions; fp32 like the Predictor, so they agree."""
    model.eval()
    predictions: list[torch.Tensor] = []
    with torch.inference_mode():
        loss_sum = torch.zeros((), dtype=torch.float32, device=images.device)
        for start in range(0, int(labels.numel()), batch_size):
            batch = images[start : start + batch_size]
            targets = labels[start : start + batch_size]
            logits = model(normalize(batch).contiguous(memory_format=memory_format)).float()
            loss_sum += F.cross_entropy(logits, targets, reduction="sum")
            predictions.append(logits.argmax(dim=1))
        mean_loss = loss_sum.item() / int(labels.numel())
    predicted = torch.cat(predictions).cpu()
    accuracy = float((predicted == labels.cpu()).sum().item()) / int(labels.numel())
    return mean_loss, accuracy, predicted


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else 0.0
