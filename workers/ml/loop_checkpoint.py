"""What the epoch loop puts in its per-epoch checkpoint and how it takes it back on resume.

Writing and reading the file, and the RNG states, are :mod:`workers.ml.resume`'s; this module
owns the payload: the weights, optimizer and schedule, the loop's counters and history, and the
early-stopping state. Both directions live here so the keys cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workers.ml.loop_results import EpochResult, LoopOutcome
from workers.ml.resume import capture_rng, restore_rng, write_checkpoint

__all__ = ["restore_loop_checkpoint", "save_loop_checkpoint"]

_HISTORY_FIELDS = tuple(f.name for f in fields(EpochResult))


def save_loop_checkpoint(
    path: Path,
    *,
    identity: dict[str, Any],
    epoch: int,
    finished: bool,
    outcome: LoopOutcome,
    best_loss: float | None,
    bad_epochs: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> None:
    """Write the state after ``epoch`` to ``path`` (``identity`` inside, checked on resume)."""
    write_checkpoint(
        {
            "identity": identity,
            "epoch": epoch,
            "step": outcome.step,
            "samples": outcome.samples,
            "train_seconds": outcome.train_seconds,
            "finished": finished,
            "stopped_early": outcome.stopped_early,
            "history": _history_columns(outcome.history),
            "model": _cpu(model.state_dict()),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "best": {
                "loss": best_loss,
                "epoch": outcome.best_epoch,
                "bad_epochs": bad_epochs,
                "state": None if outcome.best_state is None else _cpu(outcome.best_state),
            },
            "rng": capture_rng(generator),
        },
        path,
    )


def restore_loop_checkpoint(
    restored: dict[str, Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    outcome: LoopOutcome,
) -> tuple[bool, float | None, int]:
    """Load a checkpoint's state into the objects and ``outcome``.

    Returns whether the run had finished, and the early-stopping state: the lowest validation
    loss so far and the number of epochs since it.
    """
    model.load_state_dict(restored["model"])
    optimizer.load_state_dict(restored["optimizer"])
    scheduler.load_state_dict(restored["scheduler"])
    restore_rng(restored["rng"], generator)
    outcome.history = _history_from_columns(restored["history"])
    outcome.step = int(restored["step"])
    outcome.samples = int(restored["samples"])
    outcome.train_seconds = float(restored["train_seconds"])
    outcome.resumed_from_epoch = len(outcome.history)
    outcome.stopped_early = bool(restored["stopped_early"])
    finished = bool(restored["finished"])
    best = restored["best"]
    best_loss, bad_epochs = best["loss"], int(best["bad_epochs"])
    outcome.best_epoch = best["epoch"]
    outcome.best_state = best["state"]
    return finished, best_loss, bad_epochs


def _history_columns(history: list[EpochResult]) -> dict[str, torch.Tensor]:
    # One float64 tensor per field (None as NaN; float64 holds Python floats exactly): a
    # thousand-epoch tabular run would otherwise pickle thousands of objects every epoch.
    return {
        name: torch.tensor(
            [math.nan if value is None else value for value in (getattr(e, name) for e in history)],
            dtype=torch.float64,
        )
        for name in _HISTORY_FIELDS
    }


def _history_from_columns(columns: dict[str, torch.Tensor]) -> list[EpochResult]:
    values = {name: columns[name].tolist() for name in _HISTORY_FIELDS}
    return [
        EpochResult(
            epoch=int(values["epoch"][i]),
            train_loss=values["train_loss"][i],
            train_accuracy=_optional(values["train_accuracy"][i]),
            val_loss=_optional(values["val_loss"][i]),
            val_accuracy=_optional(values["val_accuracy"][i]),
            seconds=values["seconds"][i],
        )
        for i in range(len(values["epoch"]))
    ]


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu") for key, value in state.items()}
