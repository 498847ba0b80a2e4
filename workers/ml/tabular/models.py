"""The regression templates: a linear model and a small MLP, and the catalogue that names them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workers.ml.tasks import TABULAR_REGRESSION


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
