"""The epoch loop's checkpoint payload: what is saved after an epoch comes back on resume."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from workers.ml.loop_checkpoint import restore_loop_checkpoint, save_loop_checkpoint
from workers.ml.loop_results import EpochResult, LoopOutcome
from workers.ml.resume import read_checkpoint

IDENTITY = {"kind": "test", "config": {"epochs": 3}}


def _objects(
    seed: int,
) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    torch.manual_seed(seed)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    return model, optimizer, scheduler


def _trained_outcome(model: nn.Module) -> LoopOutcome:
    history = [
        EpochResult(1, 0.9, 0.5, 0.8, 0.25, 1.5),
        EpochResult(2, 0.7, None, None, None, 0.25),  # None survives as NaN and back
    ]
    best = {key: value.detach().clone() for key, value in model.state_dict().items()}
    return LoopOutcome(
        history=history,
        step=8,
        total_steps=12,
        samples=64,
        train_seconds=1.75,
        best_epoch=1,
        stopped_early=True,
        best_state=best,
    )


def test_it_restores_what_it_saved(tmp_path: Path) -> None:
    model, optimizer, scheduler = _objects(seed=0)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    generator = torch.Generator().manual_seed(11)
    outcome = _trained_outcome(model)
    path = tmp_path / "checkpoint.pt"
    save_loop_checkpoint(
        path,
        identity=IDENTITY,
        epoch=2,
        finished=True,
        outcome=outcome,
        best_loss=0.8,
        bad_epochs=1,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        generator=generator,
    )
    expected_draw = torch.rand(5, generator=generator)

    restored = read_checkpoint(path, IDENTITY)
    assert restored is not None
    fresh_model, fresh_optimizer, fresh_scheduler = _objects(seed=1)
    fresh_generator = torch.Generator().manual_seed(99)
    fresh = LoopOutcome(history=[], step=0, total_steps=12, samples=0, train_seconds=0)
    finished, best_loss, bad_epochs = restore_loop_checkpoint(
        restored,
        model=fresh_model,
        optimizer=fresh_optimizer,
        scheduler=fresh_scheduler,
        generator=fresh_generator,
        outcome=fresh,
    )

    assert (finished, best_loss, bad_epochs) == (True, 0.8, 1)
    assert fresh.history == outcome.history
    assert (fresh.step, fresh.samples, fresh.train_seconds) == (8, 64, 1.75)
    assert (fresh.resumed_from_epoch, fresh.best_epoch, fresh.stopped_early) == (2, 1, True)
    assert fresh.best_state is not None and outcome.best_state is not None
    for key, value in model.state_dict().items():
        assert torch.equal(fresh_model.state_dict()[key], value)
        assert torch.equal(fresh.best_state[key], outcome.best_state[key])
    assert fresh_scheduler.state_dict() == scheduler.state_dict()
    assert fresh_optimizer.state_dict()["state"][0]["step"] == 1
    assert torch.equal(torch.rand(5, generator=fresh_generator), expected_draw)
