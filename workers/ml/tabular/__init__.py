"""Tabular regression ("market assessment"): a table of features in, one number out.

The portal hands over a :class:`TabularData` (columns of raw cells, a target per row, a split per
row). :func:`train_regressor` fits a :class:`TabularPreprocessor` on the training rows (scaling,
missing values, one-hot categories), trains a "linear" or "mlp" template on the encoded rows
with the same epoch loop as image training (progress, cancellation, checkpoints, resume, early
stopping) and saves one bundle holding weights and preprocessor. :class:`TabularPredictor` turns
a row dict back into a value with exactly the same encoding.

Modules: ``data`` (the table and how its cells are read, per workers.ml.cells), ``encoding``
(the preprocessor), ``models`` (templates), ``config`` (knobs), ``training`` (the run) and
``predictor`` (serving). The names below are the package's API.
"""

from __future__ import annotations

from workers.ml.tabular.config import RegressionConfig
from workers.ml.tabular.data import CATEGORICAL, NUMERIC, TabularColumn, TabularData
from workers.ml.tabular.encoding import ColumnEncoding, TabularPreprocessor
from workers.ml.tabular.models import REGRESSION_TEMPLATES, RegressionTemplate, build_regressor
from workers.ml.tabular.predictor import TabularPredictor
from workers.ml.tabular.training import BUNDLE_FILENAME, RegressionResult, train_regressor

__all__ = [
    "BUNDLE_FILENAME",
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
