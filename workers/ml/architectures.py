"""Model architectures that training templates can name.

A template name is stored in every saved bundle, so a name must keep building the same layer
layout for as long as bundles made with it exist; add new names instead of changing old ones.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["TEMPLATES", "Bottleneck", "LeptonNet", "build_model"]


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
    a residual one. Global average pooling makes the network independent of the input size.
    With ``width=32`` it has about 175k parameters.
    """

    def __init__(self, num_classes: int, width: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError("num_classes must be at least 1")
        if width < 8:
            raise ValueError("width must be at least 8")
        self.stem = nn.Sequential(*_conv_bn_relu(3, width, 3))
        stages: list[nn.Module] = []
        channels = width
        for multiplier in (2, 4, 8):
            out_channels = width * multiplier
            stages.append(
                nn.Sequential(
                    Bottleneck(channels, out_channels, stride=2),
                    Bottleneck(out_channels, out_channels),
                )
            )
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


def _leptonnet(num_classes: int) -> nn.Module:
    return LeptonNet(num_classes)


TEMPLATES: dict[str, Callable[[int], nn.Module]] = {
    "leptonnet": _leptonnet,
}


def build_model(template: str, *, num_classes: int) -> nn.Module:
    """Build a freshly initialised model for ``template`` with ``num_classes`` outputs.

    Raises:
        ValueError: for an unknown template name or a class count below 1.
    """
    factory = TEMPLATES.get(template)
    if factory is None:
        allowed = ", ".join(sorted(TEMPLATES))
        raise ValueError(f"unknown model template {template!r}; allowed: {allowed}")
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1")
    return factory(num_classes)
