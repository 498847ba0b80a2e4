"""Training an image classifier from labelled files, with progress, cancellation and resume.

Data sets here are small (hundreds to a few thousand images), so every split is decoded once,
held in memory as uint8 and, when it fits, moved to the GPU once; each step then only indexes,
augments and normalises a batch on the device, and nothing else competes with the model for
time. The epoch loop (shuffling, progress, validation, early stopping, checkpoints, resume)
lives in :mod:`workers.ml.loop`, shared with tabular regression.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.ml.architectures import (
    IMAGE_TEMPLATES,
    build_model,
    cached_pretrained_path,
    image_template,
    load_pretrained,
)
from workers.ml.augment import Augmentation
from workers.ml.checkpoint import ModelBundle, save_bundle
from workers.ml.data import LabeledImage, load_images, normalize
from workers.ml.device import fits_on_device, pick_device, to_device
from workers.ml.knobs import ConfigError, check_knobs, knob, knob_schema
from workers.ml.loop import (
    EpochResult,
    Predictions,
    Progress,
    TrainingCancelled,
    run_epochs,
    steps_per_epoch,
)
from workers.ml.metrics import Evaluation, evaluate_classification
from workers.ml.optimization import (
    OPTIMIZERS,
    SCHEDULES,
    balanced_class_weights,
    build_optimizer,
    build_schedule,
)
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
# The widest input range any template accepts; each template narrows it (ImageTemplate).
MIN_INPUT_SIZE = min(spec.min_input_size for spec in IMAGE_TEMPLATES.values())
MAX_INPUT_SIZE = max(spec.max_input_size for spec in IMAGE_TEMPLATES.values())
CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one image-classification run.

    Every field but ``template`` and ``pretrained_path`` is a knob the customer may set:
    :meth:`schema` describes them (type, default, range or choices, help). Invalid values raise
    :class:`workers.ml.knobs.ConfigError` (a ValueError with ``.field``) on creation, with a
    message naming the field and the allowed range. ``input_size`` left as None becomes the
    template's default input size (32 for LeptonNet-S).

    ``pretrained_path`` (not a knob: set by the portal) is a local file with weights to start
    from: a torchvision state dict or a Lepton model bundle of the same architecture. Without
    it, and with ``pretrained`` on, a torchvision template starts from its ImageNet weights if
    they lie in the local torch hub cache. Nothing is ever downloaded.
    """

    template: str = "leptonnet"
    epochs: int = knob(
        10, type="int", minimum=1, maximum=200, label="Epochs",
        help="Passes over the training images. More can help until validation loss stops "
        "improving.",
    )  # fmt: skip
    batch_size: int = knob(
        32, type="int", minimum=1, maximum=1024, label="Batch size",
        help="Images per training step. Larger is faster on a GPU; smaller can generalise "
        "better.",
    )  # fmt: skip
    learning_rate: float = knob(
        3e-3, type="float", minimum=1e-5, maximum=1.0, label="Learning rate",
        help="Peak step size. About 0.003 suits AdamW; SGD usually wants about 0.1.",
    )  # fmt: skip
    input_size: int | None = knob(
        None, type="int", minimum=MIN_INPUT_SIZE, maximum=MAX_INPUT_SIZE,
        label="Input size (px)",
        help="Images are resized to this square size. Larger sees more detail and trains "
        "slower.",
    )  # fmt: skip
    weight_decay: float = knob(
        5e-4, type="float", minimum=0.0, maximum=1.0, label="Weight decay",
        group="regularisation",
        help="Pulls weights towards zero against overfitting; 0 turns it off.",
    )  # fmt: skip
    seed: int = knob(
        0, type="int", minimum=0, maximum=2**31 - 1, label="Seed",
        help="Same seed and data give the same model on the CPU.",
    )  # fmt: skip
    optimizer: str = knob(
        "adamw", type="choice", choices=OPTIMIZERS, label="Optimizer",
        help="AdamW adapts the step per weight and is forgiving; SGD (momentum 0.9, Nesterov) "
        "can generalise slightly better with a tuned learning rate.",
    )  # fmt: skip
    schedule: str = knob(
        "onecycle", type="choice", choices=SCHEDULES, label="Learning-rate schedule",
        help="One-cycle warms up, then anneals to zero; cosine starts at the peak and "
        "anneals along a half cosine.",
    )  # fmt: skip
    label_smoothing: float = knob(
        0.0, type="float", minimum=0.0, maximum=0.5, label="Label smoothing",
        group="regularisation",
        help="Share of each target spread over the other classes; 0.1 often makes models "
        "less overconfident.",
    )  # fmt: skip
    flip: bool = knob(
        True, type="bool", label="Mirror images", group="augmentation",
        help="Mirror half the training images left-right. Turn off when direction matters "
        "(text, arrows).",
    )  # fmt: skip
    crop_padding: int = knob(
        0, type="int", minimum=0, maximum=64, label="Random shift (px)", group="augmentation",
        help="Shift training images by up to this many pixels (a random crop of the padded "
        "image); 0 turns it off. 4 suits 32 px images.",
    )  # fmt: skip
    scale_min: float = knob(
        1.0, type="float", minimum=0.08, maximum=1.0, label="Random zoom: smallest area",
        group="augmentation",
        help="Train on random crops covering this share of the image or more, resized back; "
        "1 turns it off.",
    )  # fmt: skip
    brightness: float = knob(
        0.0, type="float", minimum=0.0, maximum=1.0, label="Brightness jitter",
        group="augmentation",
        help="Vary brightness by up to this share either way; 0 turns it off.",
    )  # fmt: skip
    contrast: float = knob(
        0.0, type="float", minimum=0.0, maximum=1.0, label="Contrast jitter",
        group="augmentation",
        help="Vary contrast by up to this share either way; 0 turns it off.",
    )  # fmt: skip
    saturation: float = knob(
        0.0, type="float", minimum=0.0, maximum=1.0, label="Saturation jitter",
        group="augmentation",
        help="Vary colour saturation by up to this share either way; 0 turns it off.",
    )  # fmt: skip
    greyscale_probability: float = knob(
        0.0, type="float", minimum=0.0, maximum=1.0, label="Greyscale share",
        group="augmentation",
        help="Share of training images shown without colour; 0 turns it off.",
    )  # fmt: skip
    class_weights: str = knob(
        "none", type="choice", choices=CLASS_WEIGHTS, label="Class weights",
        group="regularisation",
        help="'balanced' weights each class by the inverse of its frequency, so rare classes "
        "count as much as common ones.",
    )  # fmt: skip
    early_stopping_patience: int = knob(
        0, type="int", minimum=0, maximum=100, label="Early stopping patience",
        group="regularisation",
        help="Stop when the validation loss has not improved for this many epochs and keep the "
        "best epoch's weights; 0 turns it off. Needs a validation split.",
    )  # fmt: skip
    pretrained: bool = knob(
        True, type="bool", label="Start from pretrained weights",
        help="Start from ImageNet weights when the worker has them installed (ResNet-18, "
        "MobileNetV3-small).",
    )  # fmt: skip
    pretrained_path: str | None = None

    # Knobs that only some templates use.
    _PRETRAINED_ONLY: ClassVar[frozenset[str]] = frozenset({"pretrained"})

    def __post_init__(self) -> None:
        if self.template not in IMAGE_TEMPLATES:
            allowed = ", ".join(sorted(IMAGE_TEMPLATES))
            raise ConfigError(
                "template", f"unknown model template {self.template!r}; allowed: {allowed}"
            )
        spec = image_template(self.template)
        if self.input_size is None:
            object.__setattr__(self, "input_size", spec.default_input_size)
        if self.pretrained_path is not None:
            if not isinstance(self.pretrained_path, str | Path) or not str(self.pretrained_path):
                raise ConfigError("pretrained_path", "pretrained_path must be a file path")
            object.__setattr__(self, "pretrained_path", str(self.pretrained_path))
        check_knobs(self, _template_limits(self.template))
        size = int(self.input_size)  # type: ignore[arg-type]
        if self.crop_padding >= size:
            raise ConfigError(
                "crop_padding",
                f"crop_padding must be between 0 and {size - 1} (below input_size); "
                f"got {self.crop_padding}",
            )

    @classmethod
    def schema(cls, template: str | None = None) -> list[dict[str, Any]]:
        """The knobs as JSON-ready dicts, in form order.

        Each has "name", "type" ("int" | "float" | "bool" | "choice"), "default", "label",
        "help" and "group" ("training" | "regularisation" | "augmentation"); int and float knobs
        have inclusive "min" and "max", choice knobs "choices". With ``template``, the
        input-size range and default are that template's and knobs it ignores are left out.
        Without, "input_size" spans every template's range with default 32.
        """
        if template is None:
            return knob_schema(cls, {"input_size": {"default": 32}})
        spec = image_template(template)
        limits = _template_limits(template)["input_size"]
        overrides = {
            "input_size": {
                "default": spec.default_input_size,
                "min": limits["minimum"],
                "max": limits["maximum"],
            }
        }
        exclude = frozenset() if spec.pretrained_file else cls._PRETRAINED_ONLY
        return knob_schema(cls, overrides, exclude)

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain data (stored in the model bundle and in checkpoints)."""
        return dataclasses.asdict(self)

    @property
    def augmentation(self) -> Augmentation:
        """The augmentation these knobs ask for."""
        return Augmentation(
            flip=self.flip,
            crop_padding=self.crop_padding,
            scale_min=self.scale_min,
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            greyscale_probability=self.greyscale_probability,
        )


def _template_limits(template: str) -> dict[str, dict[str, Any]]:
    spec = image_template(template)
    return {"input_size": {"minimum": spec.min_input_size, "maximum": spec.max_input_size}}


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
    on_cuda = target.type == "cuda"
    input_size = int(config.input_size)  # type: ignore[arg-type]
    _seed_everything(config.seed)

    # Decoded on the CPU first: the fingerprint hashes the pixels, so a resumed run is refused
    # when the images changed, wherever they were copied from.
    x_train, y_train = load_images(train, input_size)
    x_val, y_val = load_images(validation, input_size)
    x_test, y_test = load_images(test, input_size)
    checkpoint_path = Path(checkpoint_dir or output_dir) / CHECKPOINT_FILENAME
    identity = {
        "kind": "image-classification",
        "config": {k: v for k, v in config.to_dict().items() if k != "pretrained_path"},
        "data": fingerprint(labels, x_train, y_train, x_val, y_val),
    }
    restored = checkpoint_to_resume(resume, checkpoint_path, identity)

    keep_on_device = fits_on_device(sum(t.numel() for t in (x_train, x_val, x_test)), target)
    train_data = _Split(x_train, y_train, target, keep_on_device)
    val_data = _Split(x_val, y_val, target, keep_on_device)
    if test:
        eval_split, eval_data = "test", _Split(x_test, y_test, target, keep_on_device)
    elif validation:
        eval_split, eval_data = "validation", val_data
    else:
        eval_split, eval_data = "train", train_data

    if on_cuda:
        # Input sizes are fixed for the whole run, so autotuning pays off after a few steps.
        torch.backends.cudnn.benchmark = True
    memory_format = torch.channels_last if on_cuda else torch.contiguous_format
    use_bf16 = on_cuda and torch.cuda.is_bf16_supported()

    model = build_model(config.template, num_classes=len(labels))
    pretrained_from = None if restored else _load_pretrained(model, config)
    # Module.to accepts memory_format (as Tensor.to does); torch's overloads do not list it.
    model.to(device=target, memory_format=memory_format)  # type: ignore[call-overload]
    optimizer = build_optimizer(
        model,
        name=config.optimizer,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=on_cuda,
    )
    n_train = int(y_train.numel())
    # The schedule spans every epoch asked for; early stopping just leaves its tail unused.
    scheduler = build_schedule(
        optimizer,
        name=config.schedule,
        learning_rate=config.learning_rate,
        total_steps=steps_per_epoch(n_train, config.batch_size) * config.epochs,
    )
    generator = torch.Generator().manual_seed(config.seed)
    augmentation = config.augmentation
    class_weight = (
        balanced_class_weights(y_train, len(labels)).to(target)
        if config.class_weights == "balanced"
        else None
    )

    def train_step(index: torch.Tensor) -> tuple[torch.Tensor, Predictions]:
        batch, targets = train_data.take(index)
        inputs = augmentation.apply(batch, generator).contiguous(memory_format=memory_format)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(inputs)
            loss = F.cross_entropy(
                logits.float(),
                targets,
                weight=class_weight,
                label_smoothing=config.label_smoothing,
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        # Hits are counted by the loop when it reads them (on a GPU, for many steps at once).
        return loss.detach(), Predictions(logits.detach(), targets)

    def validate() -> tuple[float, float | None]:
        loss, accuracy, _, _ = _evaluate(
            model, val_data, batch_size=2 * config.batch_size, memory_format=memory_format
        )
        return loss, accuracy

    remove_torn_writes(checkpoint_path)
    outcome = run_epochs(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        generator=generator,
        n_train=n_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        step=train_step,
        validate=validate if validation else None,
        patience=config.early_stopping_patience,
        device=target,
        index_device=train_data.index_device,
        checkpoint_path=checkpoint_path,
        identity=identity,
        restored=restored,
        on_progress=on_progress,
        should_stop=should_stop,
        on_checkpoint=on_checkpoint,
    )
    for epoch in outcome.history[outcome.resumed_from_epoch :]:
        logger.info(
            "epoch %d/%d: train loss %.4f acc %.3f, val loss %s acc %s (%.1fs)",
            epoch.epoch,
            config.epochs,
            epoch.train_loss,
            epoch.train_accuracy or 0.0,
            "-" if epoch.val_loss is None else f"{epoch.val_loss:.4f}",
            "-" if epoch.val_accuracy is None else f"{epoch.val_accuracy:.3f}",
            epoch.seconds,
        )

    if should_stop is not None and should_stop():
        raise TrainingCancelled("training was cancelled before the final evaluation")
    throughput = outcome.samples_per_second
    last = outcome.history[-1]

    def report(phase: str) -> None:
        if on_progress is not None:
            on_progress(
                Progress(
                    phase=phase,
                    epoch=last.epoch,
                    epochs=config.epochs,
                    step=outcome.step,
                    total_steps=outcome.total_steps,
                    fraction=1.0,
                    train_loss=last.train_loss,
                    train_accuracy=last.train_accuracy,
                    val_loss=last.val_loss,
                    val_accuracy=last.val_accuracy,
                    images_per_second=throughput,
                    eta_seconds=0.0,
                )
            )

    report("evaluate")
    _, _, predictions, confidences = _evaluate(
        model, eval_data, batch_size=2 * config.batch_size, memory_format=memory_format
    )
    evaluation = evaluate_classification(
        eval_data.labels_cpu.tolist(),
        predictions.tolist(),
        labels,
        confidences=confidences.tolist(),
    )

    bundle_path = Path(output_dir) / BUNDLE_FILENAME
    save_bundle(
        ModelBundle(
            template=config.template,
            labels=list(labels),
            input_size=input_size,
            state_dict=model.state_dict(),
            metadata={"config": identity["config"], "best_epoch": outcome.best_epoch},
        ),
        bundle_path,
    )
    report("done")
    seconds = time.perf_counter() - started
    return TrainResult(
        bundle_path=bundle_path,
        labels=list(labels),
        history=outcome.history,
        evaluation=evaluation,
        device=target.type,
        seconds=seconds,
        images_per_second=throughput,
        evaluation_split=eval_split,
        gpu_seconds=seconds if on_cuda else 0.0,
        input_size=input_size,
        best_epoch=outcome.best_epoch,
        stopped_early=outcome.stopped_early,
        resumed_from_epoch=outcome.resumed_from_epoch,
        pretrained_from=pretrained_from,
        checkpoint_path=checkpoint_path,
    )


class _Split:
    """One split's uint8 images and int64 labels, on the GPU when they fit.

    Otherwise the images stay in pinned CPU memory and each batch is copied over on its own.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, target: torch.device, on_device: bool
    ) -> None:
        self.target = target
        self.labels_cpu = labels
        self.on_device = on_device or target.type == "cpu"
        if self.on_device:
            self.images = to_device(images, target)
            self.labels = to_device(labels, target)
        else:
            self.images = images.pin_memory()
            self.labels = labels

    def __len__(self) -> int:
        return int(self.labels_cpu.numel())

    @property
    def index_device(self) -> torch.device:
        """Where batch indices must live: with the images."""
        return self.target if self.on_device else torch.device("cpu")

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels at ``index``, on the compute device."""
        batch = self.images.index_select(0, index)
        targets = self.labels.index_select(0, index)
        if not self.on_device:
            batch = to_device(batch, self.target)
            targets = to_device(targets, self.target)
        return batch, targets

    def slice(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``start:stop`` on the compute device."""
        batch, targets = self.images[start:stop], self.labels[start:stop]
        if not self.on_device:
            batch, targets = to_device(batch, self.target), to_device(targets, self.target)
        return batch, targets


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


def _evaluate(
    model: nn.Module,
    data: _Split,
    *,
    batch_size: int,
    memory_format: torch.memory_format,
) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """Mean loss, accuracy, CPU predictions and their probabilities.

    fp32 like the Predictor, so they agree; the loss is plain cross-entropy (no class weights,
    no smoothing), so runs with different knobs compare on one scale.
    """
    model.eval()
    predictions: list[torch.Tensor] = []
    confidences: list[torch.Tensor] = []
    count = len(data)
    with torch.inference_mode():
        loss_sum = torch.zeros((), dtype=torch.float32, device=data.target)
        for start in range(0, count, batch_size):
            batch, targets = data.slice(start, start + batch_size)
            logits = model(normalize(batch).contiguous(memory_format=memory_format)).float()
            loss_sum += F.cross_entropy(logits, targets, reduction="sum")
            confidence, predicted = torch.softmax(logits, dim=1).max(dim=1)
            predictions.append(predicted)
            confidences.append(confidence)
        mean_loss = loss_sum.item() / count
    predicted = torch.cat(predictions).cpu()
    accuracy = float((predicted == data.labels_cpu).sum().item()) / count
    return mean_loss, accuracy, predicted, torch.cat(confidences).cpu()
