"""The knobs of a regression run."""

from __future__ import annotations

import pytest

from workers.ml.tabular import RegressionConfig


def test_config_validation_and_schema() -> None:
    with pytest.raises(ValueError, match="unknown regression template 'tree'"):
        RegressionConfig(template="tree")
    with pytest.raises(ValueError, match="hidden_size must be a whole number between 8 and 1024"):
        RegressionConfig(hidden_size=4)
    names = [k["name"] for k in RegressionConfig.schema("linear")]
    assert "hidden_size" not in names and "epochs" in names
    assert "hidden_size" in [k["name"] for k in RegressionConfig.schema("mlp")]
