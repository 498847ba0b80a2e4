"""Fixtures shared by the ML tests: one intra-op thread, and a small saved model bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.support.shapes import SHAPE_CLASSES
from workers.ml.architectures import build_model
from workers.ml.checkpoint import ModelBundle, save_bundle


# Module scope, so the setting is restored before tests outside this package run.
@pytest.fixture(scope="module", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread during these tests.

    The test models are tiny, so a second thread buys little; but when the two CPU cores are
    shared (a parallel Django test run, a busy CI host) OpenMP threads spin-waiting on each
    other made training 5-10x slower and the suite's duration erratic.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def random_bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid bundle with seeded random weights: enough for API tests, no training needed."""
    torch.manual_seed(1234)
    model = build_model("leptonnet", num_classes=len(SHAPE_CLASSES))
    # Non-trivial BatchNorm statistics, so eval-mode outputs differ clearly between classes.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("bundle") / "model.pt"
    save_bundle(
        ModelBundle(
            template="leptonnet",
            labels=list(SHAPE_CLASSES),
            input_size=32,
            state_dict=model.state_dict(),
        ),
        path,
    )
    return path
