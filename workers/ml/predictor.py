"""Serving a trained model bundle: image in, ranked labels out (tabular rows: see
:class:`workers.ml.tabular.TabularPredictor`; :func:`load_predictor` picks the right one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from workers.ml.architectures import build_model
from workers.ml.checkpoint import IMAGE_CLASSIFICATION, load_bundle
from workers.ml.data import image_to_uint8_tensor, normalize
from workers.ml.device import pick_device
from workers.ml.tabular import TabularPredictor

__all__ = ["Prediction", "Predictor", "load_predictor"]

# Bounds peak memory for large predict_batch calls without hurting throughput much.
_CHUNK = 64


@dataclass(frozen=True)
class Prediction:
    """One candidate label and the model's probability for it."""

    label: str
    probability: float


class Predictor:
    """A loaded model in eval mode.

    Safe to share between threads: predictions only read the model, and all per-call state
    lives in local variables.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        template: str,
        labels: Sequence[str],
        input_size: int,
        device: torch.device,
    ) -> None:
        self.model = model.eval()
        self.template = template
        self.labels: list[str] = list(labels)
        self.input_size = input_size
        self.device = device

    @classmethod
    def load(cls, path: Path, device: str | None = None) -> Predictor:
        """Load a bundle saved by training.

        ``device`` as for :func:`workers.ml.trainer.pick_device` (None picks CUDA when present).

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file is not a usable model bundle.
        """
        bundle = load_bundle(Path(path))
        if bundle.task != IMAGE_CLASSIFICATION:
            raise ValueError(
                f"{Path(path).name} is a {bundle.task} model; load it with "
                "workers.ml.tabular.TabularPredictor"
            )
        model = build_model(bundle.template, num_classes=len(bundle.labels))
        try:
            model.load_state_dict(bundle.state_dict)
        except RuntimeError as exc:
            raise ValueError(
                f"{Path(path).name}: weights do not fit template {bundle.template!r} ({exc})"
            ) from exc
        target = pick_device(device)
        model.to(target)
        return cls(
            model,
            template=bundle.template,
            labels=bundle.labels,
            input_size=bundle.input_size,
            device=target,
        )

    def predict(self, image: Image.Image, top_k: int = 3) -> list[Prediction]:
        """Return the ``top_k`` most likely labels, most likely first.

        ``top_k`` larger than the number of labels is clipped to it.

        Raises:
            ValueError: if ``top_k`` is below 1.
        """
        return self.predict_batch([image], top_k=top_k)[0]

    def predict_batch(
        self, images: Sequence[Image.Image], top_k: int = 3
    ) -> list[list[Prediction]]:
        """Like :meth:`predict` for many images at once (one result list per image)."""
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        k = min(top_k, len(self.labels))
        results: list[list[Prediction]] = []
        for start in range(0, len(images), _CHUNK):
            chunk = images[start : start + _CHUNK]
            probabilities = self._probabilities(chunk)
            # Stable sort so equal probabilities keep label order: same input, same output.
            order = torch.sort(probabilities, dim=1, descending=True, stable=True).indices[:, :k]
            for row_probs, row_order in zip(probabilities.tolist(), order.tolist(), strict=True):
                results.append([Prediction(self.labels[i], float(row_probs[i])) for i in row_order])
        return results

    def _probabilities(self, images: Sequence[Image.Image]) -> torch.Tensor:
        batch = torch.stack([image_to_uint8_tensor(image, self.input_size) for image in images])
        with torch.inference_mode():
            logits = self.model(normalize(batch.to(self.device)))
            return torch.softmax(logits.float(), dim=1).cpu()


def load_predictor(path: Path, device: str | None = None) -> Predictor | TabularPredictor:
    """Load any bundle with the predictor for its task (``ModelBundle.task``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a usable model bundle.
    """
    if load_bundle(Path(path)).task == IMAGE_CLASSIFICATION:
        return Predictor.load(path, device)
    return TabularPredictor.load(path, device)
