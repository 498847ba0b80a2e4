"""Choosing the compute device and holding data on it."""

from __future__ import annotations

import torch

__all__ = ["fits_on_device", "pick_device", "to_device"]

# Share of the free GPU memory a data set may take; the rest is for the model, activations
# and cuDNN workspaces.
_DATA_SHARE_OF_FREE_MEMORY = 0.4


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to compute on.

    ``None``, "" or "auto" pick CUDA when available, else the CPU. An explicit "cpu", "cuda" or
    "cuda:N" is honoured, and raises ValueError if that device does not exist here.
    """
    if requested is None or requested in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    try:
        chosen = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {requested!r}") from exc
    if chosen.type == "cpu":
        return torch.device("cpu")
    if chosen.type != "cuda":
        raise ValueError(f"unsupported device {requested!r}; use 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} was requested but CUDA is not available")
    index = torch.cuda.current_device() if chosen.index is None else chosen.index
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {requested!r} does not exist here")
    return torch.device("cuda", index)


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether ``nbytes`` of data should live on ``device`` for the whole run."""
    if device.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= _DATA_SHARE_OF_FREE_MEMORY * free


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move ``tensor`` to ``device``; to a GPU through pinned memory, at full bandwidth."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
