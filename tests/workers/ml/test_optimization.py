"""Optimizer, schedule and class-weight choices behind the knobs."""

from __future__ import annotations

import pytest
import torch

from workers.ml.optimization import balanced_class_weights, build_optimizer, build_schedule


def test_balanced_class_weights_are_inverse_frequency() -> None:
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 3])
    weights = balanced_class_weights(labels, 4)
    # n / (k * count): 9 / (3 * 6), 9 / (3 * 2), absent class 0, 9 / (3 * 1)
    assert weights.tolist() == pytest.approx([0.5, 1.5, 0.0, 3.0])
    # Each present class then weighs the same in total.
    assert (weights[labels].reshape(-1)).sum() == pytest.approx(9.0)


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


def test_optimizers_decay_weight_matrices_only() -> None:
    adamw = build_optimizer(_model(), name="adamw", learning_rate=0.01, weight_decay=0.1)
    assert isinstance(adamw, torch.optim.AdamW)
    decayed, plain = adamw.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.ndim > 1 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.ndim == 1 for p in plain["params"])
    sgd = build_optimizer(_model(), name="sgd", learning_rate=0.1, weight_decay=0.0)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["nesterov"]
    with pytest.raises(ValueError, match="optimizer"):
        build_optimizer(_model(), name="lion", learning_rate=0.1, weight_decay=0.0)


def _lrs(name: str, steps: int = 20) -> list[float]:
    optimizer = build_optimizer(_model(), name="sgd", learning_rate=0.1, weight_decay=0.0)
    schedule = build_schedule(optimizer, name=name, learning_rate=0.1, total_steps=steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_onecycle_warms_up_then_anneals() -> None:
    rates = _lrs("onecycle")
    peak = rates.index(max(rates))
    assert 0 < peak < len(rates) - 1
    assert max(rates) == pytest.approx(0.1, rel=0.05)
    assert rates[0] < rates[peak] and rates[-1] < rates[0]


def test_cosine_starts_at_the_peak_and_falls() -> None:
    rates = _lrs("cosine")
    assert rates[0] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    assert rates[-1] < 0.01
    with pytest.raises(ValueError, match="schedule"):
        _lrs("step")
