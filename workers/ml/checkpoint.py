"""Saving and loading trained models as self-describing bundles."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workers.ml.tasks import IMAGE_CLASSIFICATION, TABULAR_REGRESSION, TASKS

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "IMAGE_CLASSIFICATION",
    "TABULAR_REGRESSION",
    "ModelBundle",
    "load_bundle",
    "save_bundle",
    "write_atomically",
]

# Marks our files so a foreign torch checkpoint is rejected with a clear message.
BUNDLE_FORMAT = "lepton-model-bundle"
BUNDLE_VERSION = 1


@dataclass(frozen=True)
class ModelBundle:
    """Everything needed to rebuild a trained model: architecture, label names, input size.

    ``task`` is "image-classification" (``labels`` are the class names, ``input_size`` the
    square image size) or "tabular-regression" (``labels`` holds the target column's name,
    ``input_size`` the width of the encoded feature vector). ``metadata`` is plain data (str,
    int, float, bool, None, lists and str-keyed dicts of these): the training config, and for
    tabular models the fitted preprocessor. Bundles written before these two fields existed
    load as image classifiers with empty metadata.
    """

    template: str
    labels: list[str]
    input_size: int
    state_dict: dict[str, torch.Tensor]
    task: str = IMAGE_CLASSIFICATION
    metadata: dict[str, Any] = field(default_factory=dict)


def save_bundle(bundle: ModelBundle, path: Path) -> None:
    """Write ``bundle`` to ``path`` atomically.

    The data goes to a temporary file in the same directory, which is then renamed over
    ``path``, so readers never see a half-written model even if the worker dies mid-write.
    """
    path = Path(path)
    _validate(bundle.template, bundle.labels, bundle.input_size, bundle.state_dict)
    _validate_extra(bundle.task, bundle.metadata)
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
        "task": bundle.task,
        "metadata": bundle.metadata,
    }
    write_atomically(payload, path)


def write_atomically(payload: Any, path: Path, *, durable: bool = True) -> None:
    """``torch.save`` ``payload`` to ``path`` so that ``path`` is never half-written.

    The data goes to a temporary file ``.<name>.<random>.tmp`` in the same directory and is
    then renamed over ``path``. A writer killed mid-way leaves at most that temporary file
    behind, never a torn ``path``. ``durable`` also forces the data to disk before the rename,
    which protects against a machine crash too (not just a killed process) at the price of
    waiting for the disk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            if durable:
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
    task = payload.get("task", IMAGE_CLASSIFICATION)
    metadata = payload.get("metadata", {})
    _validate_extra(task, metadata, name=path.name)
    return ModelBundle(
        template=template,
        labels=list(labels),
        input_size=input_size,
        state_dict=state_dict,
        task=task,
        metadata=metadata,
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


def _validate_extra(task: object, metadata: object, *, name: str = "bundle") -> None:
    if task not in TASKS:
        raise ValueError(f"{name}: task must be one of {', '.join(TASKS)}; got {task!r}")
    if not isinstance(metadata, dict) or not _is_plain(metadata):
        raise ValueError(f"{name}: metadata must be plain data (str-keyed dicts, lists, numbers)")


def _is_plain(value: object) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False
