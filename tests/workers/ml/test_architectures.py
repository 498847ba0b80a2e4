"""Model templates: shapes across input sizes, size bounds, and template lookup."""

from __future__ import annotations

import pytest
import torch

from workers.ml.architectures import TEMPLATES, LeptonNet, build_model


@pytest.mark.parametrize("size", [32, 64, 224])
def test_output_shape_for_input_sizes(size: int) -> None:
    torch.manual_seed(0)
    model = build_model("leptonnet", num_classes=5).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 5)
    assert torch.isfinite(logits).all()


def test_trains_in_train_mode() -> None:
    model = LeptonNet(num_classes=3)
    logits = model(torch.randn(4, 3, 32, 32))
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_count_is_small() -> None:
    count = sum(p.numel() for p in build_model("leptonnet", num_classes=3).parameters())
    assert 100_000 <= count <= 300_000


def test_templates_registry() -> None:
    assert isinstance(TEMPLATES["leptonnet"](4), LeptonNet)


def test_unknown_template_names_allowed_ones() -> None:
    with pytest.raises(ValueError, match="leptonnet"):
        build_model("resnet9000", num_classes=3)


def test_num_classes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        build_model("leptonnet", num_classes=0)
