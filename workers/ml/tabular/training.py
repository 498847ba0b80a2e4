"""The training loop of a regression run: encode the splits, fit the model with the shared epoch
loop (progress, cancellation, checkpoints, resume, early stopping), evaluate and save the bundle.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.ml.checkpoint import ModelBundle, save_bundle
from workers.ml.device import pick_device
from workers.ml.loop import (
    EpochResult,
    LoopOutcome,
    Progress,
    TrainingCancelled,
    run_epochs,
    steps_per_epoch,
)
from workers.ml.metrics import RegressionEvaluation, evaluate_regression
from workers.ml.optimization import build_optimizer, build_schedule
from workers.ml.resume import (
    CHECKPOINT_FILENAME,
    checkpoint_to_resume,
    fingerprint,
    remove_torn_writes,
)
from workers.ml.tabular.config import RegressionConfig
from workers.ml.tabular.data import SPLITS, TabularData, target_value
from workers.ml.tabular.encoding import TabularPreprocessor
from workers.ml.tabular.models import build_regressor
from workers.ml.tasks import TABULAR_REGRESSION

BUNDLE_FILENAME = "model.pt"


@dataclass(frozen=True)
class RegressionResult:
    """Outcome of :func:`train_regressor`.

    ``evaluation`` is in the target's units, on ``evaluation_split`` ("test", else
    "validation", else "train"); its pairs' ``index`` is the row's index in the
    :class:`TabularData`. ``history`` losses are mean squared errors on the scaled target
    (1.0 is as good as always predicting the training mean). ``rows_per_second`` is training
    throughput; ``skipped_rows`` counts rows left out because their target was missing.
    ``feature_names`` names the encoded inputs. The other fields mean what they mean in
    ``TrainResult``.
    """

    bundle_path: Path
    target_name: str
    history: list[EpochResult]
    evaluation: RegressionEvaluation
    evaluation_split: str
    device: str
    seconds: float
    rows_per_second: float
    gpu_seconds: float = 0.0
    best_epoch: int | None = None
    stopped_early: bool = False
    resumed_from_epoch: int = 0
    skipped_rows: int = 0
    feature_names: list[str] = field(default_factory=list)
    checkpoint_path: Path | None = None


@dataclass(frozen=True)
class _Prepared:
    """The table encoded for training: the rows of each split with a known target, as tensors
    on the CPU, and the split the final evaluation reads."""

    preprocessor: TabularPreprocessor
    targets: list[float | None]
    by_split: dict[str, list[int]]
    eval_split: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_eval: torch.Tensor

    @property
    def known_rows(self) -> int:
        return sum(len(rows) for rows in self.by_split.values())


def _prepare(data: TabularData) -> _Prepared:
    targets = [target_value(data, i) for i in range(data.rows)]
    known = [i for i in range(data.rows) if targets[i] is not None]
    by_split = {split: [i for i in known if data.splits[i] == split] for split in SPLITS}
    if not by_split["train"]:
        raise ValueError(
            f"no training row has a value for the target {data.target_name!r}; fill in the "
            "target or assign rows to the train split"
        )
    preprocessor = TabularPreprocessor.fit(data, by_split["train"])

    def encoded(rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(preprocessor.transform(data, rows))
        raw = np.array([targets[i] for i in rows], dtype=np.float64)
        y = torch.from_numpy(preprocessor.scale_target(raw).astype(np.float32))
        return x, y

    x_train, y_train = encoded(by_split["train"])
    x_val, y_val = encoded(by_split["validation"])
    if by_split["test"]:
        eval_split = "test"
    elif by_split["validation"]:
        eval_split = "validation"
    else:
        eval_split = "train"
    x_eval, _ = encoded(by_split[eval_split])
    return _Prepared(
        preprocessor, targets, by_split, eval_split, x_train, y_train, x_val, y_val, x_eval
    )


def train_regressor(
    *,
    config: RegressionConfig,
    data: TabularData,
    output_dir: Path,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool | Path = False,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> RegressionResult:
    """Train a regressor on ``data`` and save it as ``output_dir / "model.pt"``.

    Mean-squared-error loss on the scaled target; the optimizer, schedule and early stopping
    follow ``config``. ``on_progress``, ``should_stop``, ``checkpoint_dir``, ``resume`` and
    ``on_checkpoint`` behave exactly as in :func:`workers.ml.trainer.train_classifier`
    (``Progress.train_accuracy``/``val_accuracy`` are None; ``images_per_second`` counts
    rows). Same seed, same data, CPU: same weights.

    Raises:
        ValueError: naming column and row for a bad cell, when no training row has a target,
            or for a checkpoint of another run.
        TrainingCancelled: see ``should_stop``.
    """
    started = time.perf_counter()
    target = pick_device(device)
    prepared = _prepare(data)
    preprocessor = prepared.preprocessor
    checkpoint_path = Path(checkpoint_dir or output_dir) / CHECKPOINT_FILENAME
    identity = _identity(config, prepared)
    restored = checkpoint_to_resume(resume, checkpoint_path, identity)
    model, outcome = _fit(
        config,
        prepared,
        target,
        checkpoint_path=checkpoint_path,
        identity=identity,
        restored=restored,
        on_progress=on_progress,
        should_stop=should_stop,
        on_checkpoint=on_checkpoint,
    )
    if should_stop is not None and should_stop():
        raise TrainingCancelled("training was cancelled before the final evaluation")
    if on_progress is not None:
        on_progress(_final_progress("evaluate", config, outcome))
    evaluation = _evaluate(model, prepared, target, data.target_name)
    bundle_path = Path(output_dir) / BUNDLE_FILENAME
    _save_model(bundle_path, config, data, preprocessor, model, outcome)
    if on_progress is not None:
        on_progress(_final_progress("done", config, outcome))
    seconds = time.perf_counter() - started
    return RegressionResult(
        bundle_path=bundle_path,
        target_name=data.target_name,
        history=outcome.history,
        evaluation=evaluation,
        evaluation_split=prepared.eval_split,
        device=target.type,
        seconds=seconds,
        rows_per_second=outcome.samples_per_second,
        gpu_seconds=seconds if target.type == "cuda" else 0.0,
        best_epoch=outcome.best_epoch,
        stopped_early=outcome.stopped_early,
        resumed_from_epoch=outcome.resumed_from_epoch,
        skipped_rows=data.rows - prepared.known_rows,
        feature_names=preprocessor.feature_names,
        checkpoint_path=checkpoint_path,
    )


def _identity(config: RegressionConfig, prepared: _Prepared) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the kind, the knobs and the encoded data."""
    return {
        "kind": TABULAR_REGRESSION,
        "config": config.to_dict(),
        "data": fingerprint(
            json.dumps(prepared.preprocessor.to_dict(), sort_keys=True),
            prepared.x_train,
            prepared.y_train,
            prepared.x_val,
            prepared.y_val,
        ),
    }


def _evaluate(
    model: nn.Module, prepared: _Prepared, target: torch.device, target_name: str
) -> RegressionEvaluation:
    model.eval()
    with torch.inference_mode():
        scaled = model(prepared.x_eval.to(target)).double().cpu().numpy()
    rows = prepared.by_split[prepared.eval_split]
    return evaluate_regression(
        np.array([prepared.targets[i] for i in rows], dtype=np.float64),
        prepared.preprocessor.unscale_target(scaled),
        indices=rows,
        target=target_name,
    )


def _fit(
    config: RegressionConfig,
    prepared: _Prepared,
    target: torch.device,
    *,
    checkpoint_path: Path,
    identity: dict[str, Any],
    restored: dict[str, Any] | None,
    on_progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    on_checkpoint: Callable[[Path], None] | None,
) -> tuple[nn.Module, LoopOutcome]:
    """Seed, build and train the model; the seeding order keeps CPU runs bit-identical."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_regressor(
        config.template, n_features=prepared.preprocessor.width, hidden_size=config.hidden_size
    )
    _silence_constant_inputs(model.first_layer, prepared.x_train)
    model.to(target)
    x_train, y_train = prepared.x_train.to(target), prepared.y_train.to(target)
    x_val, y_val = prepared.x_val.to(target), prepared.y_val.to(target)
    n_train = int(y_train.numel())
    optimizer, scheduler = _optimizer_and_schedule(model, config, n_train, target)

    def train_step(index: torch.Tensor) -> tuple[torch.Tensor, None]:
        loss = F.mse_loss(model(x_train.index_select(0, index)), y_train.index_select(0, index))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss.detach(), None

    def validate() -> tuple[float, float | None]:
        model.eval()
        with torch.inference_mode():
            return F.mse_loss(model(x_val), y_val).item(), None

    remove_torn_writes(checkpoint_path)
    outcome = run_epochs(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        generator=torch.Generator().manual_seed(config.seed),
        n_train=n_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        step=train_step,
        validate=validate if prepared.by_split["validation"] else None,
        patience=config.early_stopping_patience,
        device=target,
        index_device=target,
        checkpoint_path=checkpoint_path,
        identity=identity,
        restored=restored,
        on_progress=on_progress,
        should_stop=should_stop,
        on_checkpoint=on_checkpoint,
    )
    return model, outcome


def _optimizer_and_schedule(
    model: nn.Module, config: RegressionConfig, n_train: int, target: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    optimizer = build_optimizer(
        model,
        name=config.optimizer,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=target.type == "cuda",
    )
    scheduler = build_schedule(
        optimizer,
        name=config.schedule,
        learning_rate=config.learning_rate,
        total_steps=steps_per_epoch(n_train, config.batch_size) * config.epochs,
    )
    return optimizer, scheduler


def _final_progress(phase: str, config: RegressionConfig, outcome: LoopOutcome) -> Progress:
    last = outcome.history[-1]
    return Progress(
        phase=phase,
        epoch=last.epoch,
        epochs=config.epochs,
        step=outcome.step,
        total_steps=outcome.total_steps,
        fraction=1.0,
        train_loss=last.train_loss,
        train_accuracy=None,
        val_loss=last.val_loss,
        val_accuracy=None,
        images_per_second=outcome.samples_per_second,
        eta_seconds=0.0,
    )


def _save_model(
    path: Path,
    config: RegressionConfig,
    data: TabularData,
    preprocessor: TabularPreprocessor,
    model: nn.Module,
    outcome: LoopOutcome,
) -> None:
    save_bundle(
        ModelBundle(
            template=config.template,
            labels=[data.target_name],
            input_size=preprocessor.width,
            state_dict=model.state_dict(),
            task=TABULAR_REGRESSION,
            metadata={
                "preprocessor": preprocessor.to_dict(),
                "hidden_size": config.hidden_size,
                "config": config.to_dict(),
                "best_epoch": outcome.best_epoch,
            },
        ),
        path,
    )


def _silence_constant_inputs(first: nn.Linear, x_train: torch.Tensor) -> None:
    """Zero the first-layer weights of inputs that never vary in training.

    Such an input (the "other" category or a missing indicator that training never saw set)
    gets no gradient, so a random initial weight would stay and add noise whenever the input
    is set at prediction time. At zero it adds nothing, and weight decay keeps it there.
    """
    constant = (x_train.max(dim=0).values == x_train.min(dim=0).values).nonzero().flatten()
    with torch.no_grad():
        first.weight[:, constant] = 0.0
