"""Model architectures that training templates can name, and their pretrained weights.

A template name is stored in every saved bundle, so a name must keep building the same layer
layout for as long as bundles made with it exist; add new names instead of changing old ones.

Pretrained weights are never downloaded. They are used only when a file is given
(``TrainConfig.pretrained_path``) or when the torchvision checkpoint of a template already
lies in the local torch hub cache (``torch.hub.get_dir() / "checkpoints"``), where an operator
may place it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workers.ml.checkpoint import BUNDLE_FORMAT
from workers.ml.tasks import IMAGE_CLASSIFICATION

__all__ = [
    "IMAGE_TEMPLATES",
    "TEMPLATES",
    "Bottleneck",
    "ImageTemplate",
    "LeptonNet",
    "build_model",
    "cached_pretrained_path",
    "image_template",
    "load_pretrained",
]


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=False,  # BatchNorm's shift makes a conv bias redundant.
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (optionally strided), 1x1 expand; identity residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        mid = max(out_channels // 4, 8)
        self.body = nn.Sequential(
            *_conv_bn_relu(in_channels, mid, 1),
            *_conv_bn_relu(mid, mid, 3, stride=stride),
            nn.Conv2d(mid, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.residual = stride == 1 and in_channels == out_channels
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        out = self.body(x)
        if self.residual:
            out = out + x
        return self.act(out)


class LeptonNet(nn.Module):
    """The house small-and-fast CNN.

    A stride-1 3x3 stem keeps full resolution for small inputs (32x32 is the default training
    size), then three stages each halve the resolution with a strided bottleneck and refine with
    ``depths[i] - 1`` residual ones. Global average pooling makes the network independent of the
    input size. With the defaults (LeptonNet-S) it has about 175k parameters.
    """

    def __init__(
        self,
        num_classes: int,
        width: int = 32,
        dropout: float = 0.2,
        depths: tuple[int, int, int] = (2, 2, 2),
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError("num_classes must be at least 1")
        if width < 8:
            raise ValueError("width must be at least 8")
        if len(depths) != 3 or min(depths) < 1:
            raise ValueError("depths must be three block counts of at least 1")
        self.stem = nn.Sequential(*_conv_bn_relu(3, width, 3))
        stages: list[nn.Module] = []
        channels = width
        for multiplier, depth in zip((2, 4, 8), depths, strict=True):
            out_channels = width * multiplier
            blocks = [Bottleneck(channels, out_channels, stride=2)]
            blocks += [Bottleneck(out_channels, out_channels) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, Bottleneck) and module.residual:
                # Residual blocks start as identity, which lets short CPU runs converge quickly.
                last_bn = module.body[-1]
                assert isinstance(last_bn, nn.BatchNorm2d)
                nn.init.zeros_(last_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a normalised (N, 3, H, W) batch to (N, num_classes) logits."""
        x = self.stages(self.stem(x))
        x = torch.flatten(self.pool(x), 1)
        return self.head(self.dropout(x))


def _leptonnet_s(num_classes: int) -> nn.Module:
    return LeptonNet(num_classes)


def _leptonnet_m(num_classes: int) -> nn.Module:
    return LeptonNet(num_classes, width=48, depths=(2, 3, 3))


def _leptonnet_l(num_classes: int) -> nn.Module:
    return LeptonNet(num_classes, width=64, depths=(3, 4, 4))


def _resnet18(num_classes: int) -> nn.Module:
    # Imported here: torchvision.models takes a while to import and most processes never need it.
    from torchvision.models import resnet18

    return resnet18(weights=None, num_classes=num_classes)


def _mobilenet_v3_small(num_classes: int) -> nn.Module:
    from torchvision.models import mobilenet_v3_small

    return mobilenet_v3_small(weights=None, num_classes=num_classes)


@dataclass(frozen=True)
class ImageTemplate:
    """An image-classification template: how to build it and what input it accepts.

    ``min_input_size``..``max_input_size`` (pixels, square, inclusive) bound
    ``TrainConfig.input_size``; ``default_input_size`` is used when a config leaves it unset.
    ``pretrained_file`` is the file name torchvision gives the template's ImageNet checkpoint; it
    is looked up in the local torch hub cache, never downloaded. ``head`` lists the state-dict
    prefixes of the classification layer, which is never taken from pretrained weights (its
    classes are not the customer's).
    """

    name: str
    title: str
    description: str
    build: Callable[[int], nn.Module]
    min_input_size: int = 32
    max_input_size: int = 224
    default_input_size: int = 32
    pretrained_file: str | None = None
    head: tuple[str, ...] = ("head.",)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description for the portal's template catalogue."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "task": IMAGE_CLASSIFICATION,
            "min_input_size": self.min_input_size,
            "max_input_size": self.max_input_size,
            "default_input_size": self.default_input_size,
            "pretrained_available": cached_pretrained_path(self.name) is not None,
        }


_LEPTON_S = (
    "LeptonNet-S",
    "The house image classifier: small (175k parameters) and fast; trains in seconds on small "
    "datasets of small images.",
)
IMAGE_TEMPLATES: dict[str, ImageTemplate] = {
    spec.name: spec
    for spec in (
        # "leptonnet" predates the sizes; it is LeptonNet-S and stays so for its saved bundles.
        ImageTemplate("leptonnet", *_LEPTON_S, _leptonnet_s),
        ImageTemplate("leptonnet-s", *_LEPTON_S, _leptonnet_s),
        ImageTemplate(
            "leptonnet-m",
            "LeptonNet-M",
            "Wider and deeper LeptonNet (about 0.6M parameters) for more classes or finer "
            "detail; a GPU helps above 64 px.",
            _leptonnet_m,
            default_input_size=64,
        ),
        ImageTemplate(
            "leptonnet-l",
            "LeptonNet-L",
            "The largest LeptonNet (about 1.4M parameters) for larger datasets; meant for a GPU.",
            _leptonnet_l,
            default_input_size=96,
        ),
        ImageTemplate(
            "resnet18",
            "ResNet-18",
            "The classic torchvision ResNet-18 (11M parameters); starts from ImageNet weights "
            "when they are installed on the worker.",
            _resnet18,
            default_input_size=96,
            pretrained_file="resnet18-f37072fd.pth",
            head=("fc.",),
        ),
        ImageTemplate(
            "mobilenet_v3_small",
            "MobileNetV3-small",
            "torchvision's MobileNetV3-small (1.5M parameters), built for phones; starts from "
            "ImageNet weights when they are installed on the worker.",
            _mobilenet_v3_small,
            default_input_size=96,
            pretrained_file="mobilenet_v3_small-047dcff4.pth",
            head=("classifier.3.",),
        ),
    )
}

# The original registry (name -> factory taking num_classes), kept for existing callers.
TEMPLATES: dict[str, Callable[[int], nn.Module]] = {
    name: spec.build for name, spec in IMAGE_TEMPLATES.items()
}


def image_template(template: str) -> ImageTemplate:
    """The spec of image template ``template``.

    Raises:
        ValueError: naming the allowed templates, for an unknown name.
    """
    spec = IMAGE_TEMPLATES.get(template)
    if spec is None:
        allowed = ", ".join(sorted(IMAGE_TEMPLATES))
        raise ValueError(f"unknown model template {template!r}; allowed: {allowed}")
    return spec


def build_model(template: str, *, num_classes: int) -> nn.Module:
    """Build a freshly initialised model for ``template`` with ``num_classes`` outputs.

    Never loads pretrained weights (see :func:`load_pretrained`), so a bundle's weights always
    land on the same random-initialised layout.

    Raises:
        ValueError: for an unknown template name or a class count below 1.
    """
    spec = image_template(template)
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1")
    return spec.build(num_classes)


def cached_pretrained_path(template: str) -> Path | None:
    """The template's torchvision checkpoint in the local torch hub cache, if it lies there.

    Only looks at the file system: ``torch.hub.get_dir()`` (``$TORCH_HOME/hub``, by default
    ``~/.cache/torch/hub``) ``/ "checkpoints" / pretrained_file``. Nothing is ever downloaded.
    """
    spec = image_template(template)
    if spec.pretrained_file is None:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / spec.pretrained_file
    return path if path.is_file() else None


def load_pretrained(model: nn.Module, template: str, path: Path) -> int:
    """Copy pretrained weights from ``path`` into ``model`` (built for ``template``).

    ``path`` holds either a plain state dict (a torchvision ``.pth`` file) or a Lepton model
    bundle, e.g. an earlier model version to fine-tune. Every tensor of the model except the
    template's classification head must be in the file with the same shape; the head keeps its
    fresh initialisation. The file is loaded with ``weights_only=True``.

    Returns:
        The number of tensors copied.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is unreadable or its weights do not fit the template.
    """
    spec = image_template(template)
    path = Path(path)
    with path.open("rb") as handle:
        try:
            payload: Any = torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"{path.name} is not a readable weights file ({exc})") from exc
    if isinstance(payload, dict) and payload.get("format") == BUNDLE_FORMAT:
        payload = payload.get("state_dict")
    if not isinstance(payload, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        raise ValueError(f"{path.name} holds no state dict of weights")
    wanted = {
        key: value for key, value in model.state_dict().items() if not key.startswith(spec.head)
    }
    missing = [key for key in wanted if key not in payload]
    mismatched = [
        key for key in wanted if key in payload and payload[key].shape != wanted[key].shape
    ]
    if missing or mismatched:
        example = (missing or mismatched)[0]
        raise ValueError(
            f"{path.name} does not fit template {template!r}: {len(missing)} tensors missing and "
            f"{len(mismatched)} of another shape (first: {example})"
        )
    model.load_state_dict({key: payload[key] for key in wanted}, strict=False)
    return len(wanted)
