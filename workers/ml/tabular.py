"""Tabular regression ("market assessment"): a table of features in, one number out.

The portal hands over a :class:`TabularData` (columns of raw cells, a target per row, a split per
row). :func:`train_regressor` fits a :class:`TabularPreprocessor` on the training rows (scaling,
missing values, one-hot categories), trains a "linear" or "mlp" template on the encoded rows
with the same epoch loop as image training (progress, cancellation, checkpoints, resume, early
stopping) and saves one bundle holding weights and preprocessor. :class:`TabularPredictor` turns
a row dict back into a value with exactly the same encoding.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.ml.checkpoint import TABULAR_REGRESSION, ModelBundle, load_bundle, save_bundle
from workers.ml.device import pick_device
from workers.ml.knobs import ConfigError, check_knobs, knob, knob_schema
from workers.ml.loop import EpochResult, Progress, TrainingCancelled, run_epochs, steps_per_epoch
from workers.ml.metrics import RegressionEvaluation, evaluate_regression
from workers.ml.optimization import OPTIMIZERS, SCHEDULES, build_optimizer, build_schedule
from workers.ml.resume import (
    CHECKPOINT_FILENAME,
    checkpoint_to_resume,
    fingerprint,
    remove_torn_writes,
)

__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "REGRESSION_TEMPLATES",
    "ColumnEncoding",
    "RegressionConfig",
    "RegressionResult",
    "RegressionTemplate",
    "TabularColumn",
    "TabularData",
    "TabularPredictor",
    "TabularPreprocessor",
    "build_regressor",
    "train_regressor",
]

logger = logging.getLogger(__name__)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)
SPLITS = ("train", "validation", "test")
BUNDLE_FILENAME = "model.pt"
#: categories beyond the most frequent ones share the "other" column
MAX_CATEGORIES = 100
# Cells that mean "unknown" (any case), besides None, NaN and the empty string.
_MISSING = frozenset({"", "na", "n/a", "#n/a", "nan", "null", "none", "-"})


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TabularColumn:
    """One feature column.

    ``kind`` "numeric": cells are numbers (int, float, or text such as "12.5"); a boolean column
    is numeric with 0/1 (or True/False). ``kind`` "categorical": cells are labels, compared as
    trimmed text. In both, None, NaN and empty or "NA"-like text mean the value is missing.
    """

    name: str
    kind: str
    values: Sequence[Any]


@dataclass(frozen=True)
class TabularData:
    """A table for regression: feature ``columns``, a ``target`` and a split for every row.

    ``target`` cells are numbers or numeric text; rows whose target is missing are left out of
    training and evaluation (``RegressionResult.skipped_rows`` counts them). ``splits`` holds
    "train", "validation" or "test" per row. Row i is ``column.values[i]`` for every column.

    Raises:
        ValueError: naming the column or row, for unequal lengths, an unknown kind or split,
            duplicate or empty column names, or no columns at all.
    """

    columns: Sequence[TabularColumn]
    target: Sequence[Any]
    splits: Sequence[str]
    target_name: str = "target"

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("a table needs at least one feature column")
        names = [column.name for column in self.columns]
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError("feature column names must be non-empty text")
        if len(set(names)) != len(names):
            duplicate = next(name for name in names if names.count(name) > 1)
            raise ValueError(f"feature column {duplicate!r} appears twice")
        rows = len(self.target)
        for column in self.columns:
            if column.kind not in KINDS:
                raise ValueError(
                    f"column {column.name!r} has kind {column.kind!r}; use 'numeric' or "
                    "'categorical'"
                )
            if len(column.values) != rows:
                raise ValueError(
                    f"column {column.name!r} has {len(column.values)} values for {rows} rows"
                )
        if len(self.splits) != rows:
            raise ValueError(f"splits has {len(self.splits)} entries for {rows} rows")
        for index, split in enumerate(self.splits):
            if split not in SPLITS:
                raise ValueError(
                    f"data row {index + 1} has split {split!r}; use train, validation or test"
                )

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.target)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        features: Mapping[str, str],
        target: str,
        split_key: str = "__split",
    ) -> TabularData:
        """Build from row dicts, e.g. ``csv.DictReader`` over a canonical tabular version.

        ``features`` maps each feature column name to its kind, in the order to use.
        A record without a feature key counts as a missing value there.

        Raises:
            ValueError: as for the constructor, or naming a record without ``split_key``.
        """
        values: dict[str, list[Any]] = {name: [] for name in features}
        targets: list[Any] = []
        splits: list[str] = []
        for index, record in enumerate(records):
            if split_key not in record:
                raise ValueError(f"data row {index + 1} has no {split_key!r} value")
            for name in features:
                values[name].append(record.get(name))
            targets.append(record.get(target))
            splits.append(record[split_key])
        return cls(
            columns=[TabularColumn(name, kind, values[name]) for name, kind in features.items()],
            target=targets,
            splits=splits,
            target_name=target,
        )


def _number(value: Any, *, where: str) -> float | None:
    """A cell as a finite float, or None when missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if text.lower() in _MISSING:
            return None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{where}: {text[:40]!r} is not a number") from None
    if math.isnan(number):
        return None
    if not math.isfinite(number):
        raise ValueError(f"{where}: {value!r} is not a finite number")
    return number


def _category(value: Any) -> str:
    """A cell as a category; every missing value is the empty category."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value).strip()
    return "" if text.lower() in _MISSING else text


# --- preprocessing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnEncoding:
    """How one column becomes model inputs.

    Numeric: ``(value - mean) / std`` (the training rows' mean and standard deviation); a
    missing value becomes the mean (0 after scaling) and, if ``missing_indicator``, sets an
    extra 0/1 input. Categorical: one 0/1 input per category in ``categories`` plus a last one
    for any other value (unseen or rare); a missing value is the category "".
    """

    name: str
    kind: str
    mean: float = 0.0
    std: float = 1.0
    missing_indicator: bool = False
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        """Number of model inputs this column produces."""
        if self.kind == NUMERIC:
            return 1 + int(self.missing_indicator)
        return len(self.categories) + 1

    @property
    def feature_names(self) -> list[str]:
        """Human-readable names of this column's inputs."""
        if self.kind == NUMERIC:
            return [self.name] + ([f"{self.name} (missing)"] if self.missing_indicator else [])
        shown = [c if c else "(missing)" for c in self.categories]
        return [f"{self.name}={c}" for c in shown] + [f"{self.name}=(other)"]


@dataclass(frozen=True)
class TabularPreprocessor:
    """The encoding of a table fitted on its training rows, and the target's scaling.

    The model is trained on the target scaled to mean 0 and standard deviation 1 (so one
    learning rate suits prices and percentages alike); :meth:`unscale_target` undoes it.
    """

    columns: tuple[ColumnEncoding, ...]
    target_name: str
    target_mean: float
    target_std: float

    @classmethod
    def fit(
        cls, data: TabularData, rows: Sequence[int], *, max_categories: int = MAX_CATEGORIES
    ) -> TabularPreprocessor:
        """Fit on the rows ``rows`` of ``data`` (the training rows with a known target).

        Raises:
            ValueError: for no rows, a cell that is not a number in a numeric column, or a
                missing target among ``rows``.
        """
        if not rows:
            raise ValueError("cannot fit a preprocessor on no rows")
        encodings: list[ColumnEncoding] = []
        for column in data.columns:
            if column.kind == NUMERIC:
                numbers = [
                    _number(column.values[i], where=f"column {column.name!r}, data row {i + 1}")
                    for i in rows
                ]
                known = np.array([n for n in numbers if n is not None], dtype=np.float64)
                mean = float(known.mean()) if known.size else 0.0
                std = float(known.std()) if known.size else 0.0
                encodings.append(
                    ColumnEncoding(
                        column.name,
                        NUMERIC,
                        mean=mean,
                        std=std if std > 0 else 1.0,
                        missing_indicator=known.size < len(numbers),
                    )
                )
            else:
                counts = Counter(_category(column.values[i]) for i in rows)
                # The most frequent categories, then in name order so the layout is readable.
                kept = sorted(c for c, _ in counts.most_common(max_categories))
                encodings.append(ColumnEncoding(column.name, CATEGORICAL, categories=tuple(kept)))
        targets = np.array([_target(data, i) for i in rows], dtype=np.float64)
        std = float(targets.std())
        return cls(
            columns=tuple(encodings),
            target_name=data.target_name,
            target_mean=float(targets.mean()),
            target_std=std if std > 0 else 1.0,
        )

    @property
    def width(self) -> int:
        """Length of an encoded row."""
        return sum(column.width for column in self.columns)

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded inputs, in order."""
        return [name for column in self.columns for name in column.feature_names]

    def transform(self, data: TabularData, rows: Sequence[int]) -> np.ndarray:
        """Encode rows ``rows`` of ``data`` as float32 (len(rows), width).

        Raises:
            ValueError: naming column and row, for a non-number in a numeric column, or a
                column of the fitted table missing from ``data``.
        """
        by_name = {column.name: column for column in data.columns}
        out = np.zeros((len(rows), self.width), dtype=np.float32)
        offset = 0
        for encoding in self.columns:
            column = by_name.get(encoding.name)
            if column is None:
                raise ValueError(f"the table has no column {encoding.name!r}")
            cells = [column.values[i] for i in rows]
            self._encode(encoding, cells, out, offset, [i + 1 for i in rows])
            offset += encoding.width
        return out

    def transform_row(self, row: Mapping[str, Any]) -> np.ndarray:
        """Encode one row dict ({column name: cell}) as float32 (width,).

        A column missing from ``row`` counts as a missing value; other keys are ignored.
        """
        out = np.zeros((1, self.width), dtype=np.float32)
        offset = 0
        for encoding in self.columns:
            self._encode(encoding, [row.get(encoding.name)], out, offset, None)
            offset += encoding.width
        return out[0]

    def scale_target(self, values: np.ndarray) -> np.ndarray:
        """Target values in the units the model learns."""
        return (values - self.target_mean) / self.target_std

    def unscale_target(self, values: np.ndarray) -> np.ndarray:
        """Model outputs back in the target's units."""
        return values * self.target_std + self.target_mean

    def to_dict(self) -> dict[str, Any]:
        """Plain data, stored in the model bundle."""
        data = dataclasses.asdict(self)
        data["columns"] = [
            dataclasses.asdict(c) | {"categories": list(c.categories)} for c in self.columns
        ]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TabularPreprocessor:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: if ``data`` does not have the expected shape.
        """
        try:
            return cls(
                columns=tuple(
                    ColumnEncoding(
                        name=str(c["name"]),
                        kind=str(c["kind"]),
                        mean=float(c["mean"]),
                        std=float(c["std"]),
                        missing_indicator=bool(c["missing_indicator"]),
                        categories=tuple(str(v) for v in c["categories"]),
                    )
                    for c in data["columns"]
                ),
                target_name=str(data["target_name"]),
                target_mean=float(data["target_mean"]),
                target_std=float(data["target_std"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a serialised TabularPreprocessor: {exc!r}") from exc

    @staticmethod
    def _encode(
        encoding: ColumnEncoding,
        cells: Sequence[Any],
        out: np.ndarray,
        offset: int,
        row_numbers: Sequence[int] | None,
    ) -> None:
        if encoding.kind == NUMERIC:
            for r, cell in enumerate(cells):
                where = f"column {encoding.name!r}" + (
                    f", data row {row_numbers[r]}" if row_numbers is not None else ""
                )
                number = _number(cell, where=where)
                if number is None:
                    if encoding.missing_indicator:
                        out[r, offset + 1] = 1.0
                else:
                    out[r, offset] = (number - encoding.mean) / encoding.std
            return
        position = {category: i for i, category in enumerate(encoding.categories)}
        other = len(encoding.categories)
        for r, cell in enumerate(cells):
            out[r, offset + position.get(_category(cell), other)] = 1.0


def _target(data: TabularData, row: int) -> float | None:
    return _number(data.target[row], where=f"target {data.target_name!r}, data row {row + 1}")


# --- templates -------------------------------------------------------------------------------


class LinearRegressor(nn.Module):
    """A single linear layer: ordinary (regularised) linear regression on the encoded row."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)

    @property
    def first_layer(self) -> nn.Linear:
        """The layer that sees the inputs."""
        return self.linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_features) -> (N,)."""
        return self.linear(x).squeeze(-1)


class MLPRegressor(nn.Module):
    """Two hidden layers of ``hidden_size`` ReLU units: captures curved and joint effects."""

    def __init__(self, n_features: int, hidden_size: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_features, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
        )

    @property
    def first_layer(self) -> nn.Linear:
        """The layer that sees the inputs."""
        layer = self.layers[0]
        assert isinstance(layer, nn.Linear)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_features) -> (N,)."""
        return self.layers(x).squeeze(-1)


@dataclass(frozen=True)
class RegressionTemplate:
    """A tabular-regression template for the portal's catalogue."""

    name: str
    title: str
    description: str
    uses_hidden_size: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "task": TABULAR_REGRESSION,
        }


REGRESSION_TEMPLATES: dict[str, RegressionTemplate] = {
    "linear": RegressionTemplate(
        "linear",
        "Linear model",
        "A weighted sum of the features: quick, robust on small tables, easy to explain.",
        uses_hidden_size=False,
    ),
    "mlp": RegressionTemplate(
        "mlp",
        "Small neural network (MLP)",
        "Two hidden layers: finds curved and combined effects a linear model misses; needs "
        "more rows.",
        uses_hidden_size=True,
    ),
}


def build_regressor(
    template: str, *, n_features: int, hidden_size: int = 64
) -> LinearRegressor | MLPRegressor:
    """A freshly initialised regressor for ``template`` taking ``n_features`` inputs.

    Raises:
        ValueError: for an unknown template or fewer than one feature.
    """
    if n_features < 1:
        raise ValueError("n_features must be at least 1")
    if template == "linear":
        return LinearRegressor(n_features)
    if template == "mlp":
        return MLPRegressor(n_features, hidden_size)
    allowed = ", ".join(sorted(REGRESSION_TEMPLATES))
    raise ValueError(f"unknown regression template {template!r}; allowed: {allowed}")


# --- training --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionConfig:
    """Hyper-parameters of one tabular-regression run; same conventions as ``TrainConfig``.

    Invalid values raise :class:`workers.ml.knobs.ConfigError` naming the field and range;
    :meth:`schema` publishes the knobs.
    """

    template: str = "linear"
    epochs: int = knob(
        100, type="int", minimum=1, maximum=1000, label="Epochs",
        help="Passes over the training rows. Tables are small, so a hundred passes take "
        "seconds.",
    )  # fmt: skip
    batch_size: int = knob(
        32, type="int", minimum=1, maximum=4096, label="Batch size",
        help="Rows per training step.",
    )  # fmt: skip
    learning_rate: float = knob(
        1e-2, type="float", minimum=1e-5, maximum=1.0, label="Learning rate",
        help="Peak step size. About 0.01 suits AdamW; SGD usually wants about 0.05.",
    )  # fmt: skip
    weight_decay: float = knob(
        1e-4, type="float", minimum=0.0, maximum=1.0, label="Weight decay",
        group="regularisation",
        help="Pulls weights towards zero against overfitting (ridge regression for the linear "
        "model); 0 turns it off.",
    )  # fmt: skip
    seed: int = knob(
        0, type="int", minimum=0, maximum=2**31 - 1, label="Seed",
        help="Same seed and data give the same model on the CPU.",
    )  # fmt: skip
    optimizer: str = knob(
        "adamw", type="choice", choices=OPTIMIZERS, label="Optimizer",
        help="AdamW adapts the step per weight; SGD uses momentum 0.9 (Nesterov).",
    )  # fmt: skip
    schedule: str = knob(
        "onecycle", type="choice", choices=SCHEDULES, label="Learning-rate schedule",
        help="One-cycle warms up, then anneals to zero; cosine starts at the peak and "
        "anneals along a half cosine.",
    )  # fmt: skip
    hidden_size: int = knob(
        64, type="int", minimum=8, maximum=1024, label="Hidden units",
        help="Units in each of the MLP's two hidden layers.",
    )  # fmt: skip
    early_stopping_patience: int = knob(
        0, type="int", minimum=0, maximum=1000, label="Early stopping patience",
        group="regularisation",
        help="Stop when the validation loss has not improved for this many epochs and keep the "
        "best epoch's weights; 0 turns it off. Needs a validation split.",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.template not in REGRESSION_TEMPLATES:
            allowed = ", ".join(sorted(REGRESSION_TEMPLATES))
            raise ConfigError(
                "template", f"unknown regression template {self.template!r}; allowed: {allowed}"
            )
        check_knobs(self)

    @classmethod
    def schema(cls, template: str | None = None) -> list[dict[str, Any]]:
        """The knobs as JSON-ready dicts (format as ``TrainConfig.schema``); with ``template``,
        knobs it ignores are left out."""
        if template is None:
            return knob_schema(cls)
        spec = REGRESSION_TEMPLATES.get(template)
        if spec is None:
            raise ValueError(f"unknown regression template {template!r}")
        return knob_schema(
            cls, exclude=frozenset() if spec.uses_hidden_size else frozenset({"hidden_size"})
        )

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain data."""
        return dataclasses.asdict(self)


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
    on_cuda = target.type == "cuda"
    targets = [_target(data, i) for i in range(data.rows)]
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
    eval_rows = by_split[eval_split]
    x_eval, _ = encoded(eval_rows)

    checkpoint_path = Path(checkpoint_dir or output_dir) / CHECKPOINT_FILENAME
    identity = {
        "kind": TABULAR_REGRESSION,
        "config": config.to_dict(),
        "data": fingerprint(
            json.dumps(preprocessor.to_dict(), sort_keys=True), x_train, y_train, x_val, y_val
        ),
    }
    restored = checkpoint_to_resume(resume, checkpoint_path, identity)

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_regressor(
        config.template, n_features=preprocessor.width, hidden_size=config.hidden_size
    )
    _silence_constant_inputs(model.first_layer, x_train)
    model.to(target)
    x_train, y_train = x_train.to(target), y_train.to(target)
    x_val, y_val, x_eval = x_val.to(target), y_val.to(target), x_eval.to(target)
    optimizer = build_optimizer(
        model,
        name=config.optimizer,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=on_cuda,
    )
    n_train = int(y_train.numel())
    scheduler = build_schedule(
        optimizer,
        name=config.schedule,
        learning_rate=config.learning_rate,
        total_steps=steps_per_epoch(n_train, config.batch_size) * config.epochs,
    )
    generator = torch.Generator().manual_seed(config.seed)

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
        generator=generator,
        n_train=n_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        step=train_step,
        validate=validate if by_split["validation"] else None,
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
    if should_stop is not None and should_stop():
        raise TrainingCancelled("training was cancelled before the final evaluation")
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
                    train_accuracy=None,
                    val_loss=last.val_loss,
                    val_accuracy=None,
                    images_per_second=outcome.samples_per_second,
                    eta_seconds=0.0,
                )
            )

    report("evaluate")
    model.eval()
    with torch.inference_mode():
        scaled = model(x_eval).double().cpu().numpy()
    evaluation = evaluate_regression(
        np.array([targets[i] for i in eval_rows], dtype=np.float64),
        preprocessor.unscale_target(scaled),
        indices=eval_rows,
        target=data.target_name,
    )
    bundle_path = Path(output_dir) / BUNDLE_FILENAME
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
        bundle_path,
    )
    report("done")
    seconds = time.perf_counter() - started
    return RegressionResult(
        bundle_path=bundle_path,
        target_name=data.target_name,
        history=outcome.history,
        evaluation=evaluation,
        evaluation_split=eval_split,
        device=target.type,
        seconds=seconds,
        rows_per_second=outcome.samples_per_second,
        gpu_seconds=seconds if on_cuda else 0.0,
        best_epoch=outcome.best_epoch,
        stopped_early=outcome.stopped_early,
        resumed_from_epoch=outcome.resumed_from_epoch,
        skipped_rows=data.rows - len(known),
        feature_names=preprocessor.feature_names,
        checkpoint_path=checkpoint_path,
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


# --- serving ---------------------------------------------------------------------------------


class TabularPredictor:
    """A loaded regression bundle: row dict in, predicted value out. Safe to share between
    threads (predictions only read the model)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        template: str,
        preprocessor: TabularPreprocessor,
        device: torch.device,
    ) -> None:
        self.model = model.eval()
        self.template = template
        self.preprocessor = preprocessor
        self.device = device

    @property
    def target_name(self) -> str:
        """The column the model predicts."""
        return self.preprocessor.target_name

    @property
    def columns(self) -> list[dict[str, str]]:
        """The input columns a row may hold: ``[{"name", "kind"}]``, for API documentation."""
        return [{"name": c.name, "kind": c.kind} for c in self.preprocessor.columns]

    @classmethod
    def load(cls, path: Path, device: str | None = None) -> TabularPredictor:
        """Load a bundle saved by :func:`train_regressor`.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file is not a usable tabular-regression bundle.
        """
        bundle = load_bundle(Path(path))
        name = Path(path).name
        if bundle.task != TABULAR_REGRESSION:
            raise ValueError(
                f"{name} is an {bundle.task} model; load it with workers.ml.predictor.Predictor"
            )
        try:
            preprocessor = TabularPreprocessor.from_dict(bundle.metadata["preprocessor"])
            hidden_size = int(bundle.metadata.get("hidden_size", 64))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{name}: preprocessor missing or damaged ({exc})") from exc
        if preprocessor.width != bundle.input_size:
            raise ValueError(f"{name}: preprocessor and model disagree on the input width")
        model = build_regressor(
            bundle.template, n_features=preprocessor.width, hidden_size=hidden_size
        )
        try:
            model.load_state_dict(bundle.state_dict)
        except RuntimeError as exc:
            raise ValueError(
                f"{name}: weights do not fit template {bundle.template!r} ({exc})"
            ) from exc
        target = pick_device(device)
        model.to(target)
        return cls(model, template=bundle.template, preprocessor=preprocessor, device=target)

    def predict(self, row: Mapping[str, Any]) -> float:
        """The predicted target for one row ({column name: cell}, cells as in TabularData).

        Raises:
            ValueError: naming the column, for a cell that is not a number in a numeric column.
        """
        return self.predict_rows([row])[0]

    def predict_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        """Like :meth:`predict` for many rows."""
        if not rows:
            return []
        encoded = np.stack([self.preprocessor.transform_row(row) for row in rows])
        with torch.inference_mode():
            scaled = self.model(torch.from_numpy(encoded).to(self.device)).double().cpu().numpy()
        return [float(v) for v in self.preprocessor.unscale_target(scaled)]
