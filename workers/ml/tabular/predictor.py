"""Serving a regression bundle: a row dict in, the predicted value out, encoded as in training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workers.ml.checkpoint import load_bundle
from workers.ml.device import pick_device
from workers.ml.tabular.encoding import TabularPreprocessor
from workers.ml.tabular.models import build_regressor
from workers.ml.tasks import TABULAR_REGRESSION


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
