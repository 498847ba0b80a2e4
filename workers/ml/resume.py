"""Training checkpoints: everything needed to continue a run exactly where its last epoch ended.

A checkpoint is one file, ``checkpoint.pt``, rewritten atomically after every epoch (see
:func:`workers.ml.checkpoint.write_atomically`), so a worker killed at any moment leaves either
the previous complete checkpoint or the new one, plus at most a torn temporary file that is
ignored and cleaned up. It holds the model, optimizer and schedule state, the epoch history,
the early-stopping state and every random number generator the run draws from, so that on
the CPU a resumed run ends with bit-identical weights to one that was never interrupted.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workers.ml.checkpoint import write_atomically

__all__ = [
    "CHECKPOINT_FILENAME",
    "capture_rng",
    "checkpoint_to_resume",
    "fingerprint",
    "read_checkpoint",
    "remove_torn_writes",
    "restore_rng",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FILENAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "lepton-training-checkpoint"
CHECKPOINT_VERSION = 1


def fingerprint(*parts: torch.Tensor | str | int | Iterable[str]) -> str:
    """A SHA-256 over tensors' bytes, strings and ints, to tell whether data changed."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            data = part.detach().to("cpu").contiguous()
            digest.update(f"{data.dtype}{tuple(data.shape)}".encode())
            digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
        elif isinstance(part, str | int):
            digest.update(repr(part).encode())
        else:
            digest.update(repr(list(part)).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """The state of torch's, numpy's and Python's global RNGs and of ``generator``."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        # Only when CUDA is in use: asking for its state would otherwise create a CUDA context
        # (hundreds of MB on the GPU) in a process that trains on the CPU.
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        # A tensor, not a list: pickling 625 ints one by one costs more than the rest together.
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "generator": generator.get_state(),
    }


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    """Put the generators back into a state taken by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate(
        (
            python_state["version"],
            tuple(python_state["internal"].tolist()),
            python_state["gauss_next"],
        )
    )
    generator.set_state(state["generator"])


def write_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` (plain data and tensors) atomically as a training checkpoint.

    Atomic but not forced to disk: a killed worker cannot tear it, and the rare checkpoint a
    machine crash damages is unreadable, which :func:`read_checkpoint` answers by starting
    over. Not waiting for the disk every epoch keeps checkpoints cheap for runs of many short
    epochs (tabular data).
    """
    write_atomically(
        {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION} | state, path, durable=False
    )


def read_checkpoint(path: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """Load the checkpoint at ``path`` if it belongs to the run described by ``identity``.

    Returns None when there is no file, or when it cannot be read (then a warning is logged
    and the run starts over: losing progress is better than failing a run for good).

    Raises:
        ValueError: if the checkpoint was written for another configuration, task or data set:
            continuing it would silently train something else than was asked for.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as handle:
            state: Any = torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:
        logger.warning("ignoring unreadable training checkpoint %s: %s", path, exc)
        return None
    if (
        not isinstance(state, dict)
        or state.get("format") != CHECKPOINT_FORMAT
        or state.get("version") != CHECKPOINT_VERSION
    ):
        logger.warning("ignoring %s: not a training checkpoint of this version", path)
        return None
    saved = state.get("identity", {})
    for key in sorted(set(identity) | set(saved)):
        if saved.get(key) != identity.get(key):
            raise ValueError(
                f"{path.name} belongs to another training run (its {key} differs); delete it or "
                "train without resume"
            )
    return state


def checkpoint_to_resume(
    resume: bool | Path, checkpoint_path: Path, identity: dict[str, Any]
) -> dict[str, Any] | None:
    """The checkpoint a run should continue from, per its ``resume`` argument.

    False: none. True: the one at ``checkpoint_path`` if there is one. A path: that file.

    Raises:
        FileNotFoundError: if ``resume`` is a path to no file.
        ValueError: from :func:`read_checkpoint`, for a checkpoint of another run.
    """
    if resume is False:
        return None
    if resume is True:
        return read_checkpoint(checkpoint_path, identity)
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from at {path}")
    return read_checkpoint(path, identity)


def remove_torn_writes(path: Path) -> None:
    """Delete temporary files left next to ``path`` by writers that were killed mid-write."""
    path = Path(path)
    if path.parent.is_dir():
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
