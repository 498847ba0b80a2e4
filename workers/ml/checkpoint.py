"""Saving and loading trained models as self-describing bundles."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["BUNDLE_FORMAT", "BUNDLE_VERSION", "ModelBundle", "load_bundle", "save_bundle"]

# Marks our files so a foreign torch checkpoint is rejected with a clear message.
BUNDLE_FORMAT = "lepton-model-bundle"
BUNDLE_VERSION = 1


@dataclass(frozen=True)
class ModelBundle:
    """Everything needed to rebuild a trained model: architecture, label names, input size."""

    template: str
    labels: list[str]
    input_size: int
    state_dict: dict[str, torch.Tensor]


def save_bundle(bundle: ModelBundle, path: Path) -> None:
    """Write ``bundle`` to ``path`` atomically.

    The data goes to a temporary file in the same directory, which is then renamed over
    ``path``, so readers never see a half-written model even if the worker dies mid-write.
    """
    path = Path(path)
    _validate(bundle.template, bundle.labels, bundle.input_size, bundle.state_dict)
    payload = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "template": bundle.template,
        "labels": list(bundle.labels),
        "input_size": int(bundle.input_size),
        # CPU and contiguous, so loading never needs a GPU or depends on channels_last layout.
        "state_dict": {
            key: value.detach().to("cpu").contiguous() for key, value in bundle.state_dict.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave stray temp files next to real models.
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_bundle(path: Path) -> ModelBundle:
    """Load a bundle written by :func:`save_bundle`, onto the CPU.

    Uses ``weights_only=True``, so a crafted file cannot run code while being unpickled.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is corrupt, truncated, or not a model bundle.
    """
    path = Path(path)
    with path.open("rb") as handle:
        try:
            payload: Any = torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as exc:
            # torch raises RuntimeError, UnpicklingError, EOFError, ... for damaged files.
            raise ValueError(f"{path.name} is not a readable model file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{path.name} is not a Lepton model bundle")
    version = payload.get("version")
    if version != BUNDLE_VERSION:
        raise ValueError(f"{path.name} has unsupported bundle version {version!r}")
    missing = {"template", "labels", "input_size", "state_dict"} - payload.keys()
    if missing:
        raise ValueError(f"{path.name} is missing {', '.join(sorted(missing))}")
    template, labels = payload["template"], payload["labels"]
    input_size, state_dict = payload["input_size"], payload["state_dict"]
    _validate(template, labels, input_size, state_dict, name=path.name)
    return ModelBundle(
        template=template, labels=list(labels), input_size=input_size, state_dict=state_dict
    )


def _validate(
    template: object,
    labels: object,
    input_size: object,
    state_dict: object,
    *,
    name: str = "bundle",
) -> None:
    if not isinstance(template, str) or not template:
        raise ValueError(f"{name}: template must be a non-empty string")
    if (
        not isinstance(labels, list | tuple)
        or not labels
        or not all(isinstance(label, str) for label in labels)
    ):
        raise ValueError(f"{name}: labels must be a non-empty list of strings")
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name}: labels must be unique")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"{name}: input_size must be a positive integer")
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise ValueError(f"{name}: state_dict must map parameter names to tensors")
