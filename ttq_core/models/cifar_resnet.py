"""CIFAR ResNets of He et al. 2016 (sec. 4.2) with option-A shortcuts.

Builds ResNet-20/32/44/56 (``resnet20`` ... ``resnet56``): a 3x3 stem conv (16
channels), three stages of ``n`` = 3/5/7/9 basic blocks with 16/32/64 channels (the
first block of stages 2 and 3 has stride 2), global average pooling and a 64 ->
``num_classes`` linear layer.  All convs are 3x3 without bias, each followed by
BatchNorm; ReLU after the stem and inside/after each block.  Shortcuts are
parameter-free (option A): identity, or, where the shape changes, the input
subsampled as ``x[:, :, ::2, ::2]`` and zero-padded with equally many channels on
both sides.

Naming follows the common public CIFAR-ResNet convention, so third-party
state_dicts load as they are::

    conv1, bn1,
    layer{1,2,3}.{i}.conv1, .bn1, .conv2, .bn2, .shortcut (no parameters),
    linear

Init: ``kaiming_normal_`` (fan_in) on conv and linear weights, linear bias 0,
BatchNorm weight 1 and bias 0.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ttq_core.models.registry import check_int, register_model

__all__ = ["OptionAShortcut", "CifarBasicBlock", "CifarResNet", "resnet20", "resnet32", "resnet44", "resnet56"]


class OptionAShortcut(nn.Module):
    """Parameter-free shortcut: identity, or stride-``stride`` subsampling plus
    zero channel padding from ``in_planes`` to ``out_planes``."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError("option-A shortcut cannot reduce the channel count")
        self.in_planes = in_planes
        self.out_planes = out_planes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_planes - self.in_planes
        if extra:
            before = extra // 2
            x = F.pad(x, (0, 0, 0, 0, before, extra - before))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_planes}, {self.out_planes}, stride={self.stride}"


class CifarBasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus option-A shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = OptionAShortcut(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs; ``n`` blocks per stage."""

    def __init__(self, n: int, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        for index, (planes, stride) in enumerate(zip(widths, (1, 2, 2)), start=1):
            blocks = []
            for b in range(n):
                blocks.append(CifarBasicBlock(in_planes, planes, stride if b == 0 else 1))
                in_planes = planes
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        self.linear = nn.Linear(in_planes, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def _build(n: int, num_classes: int) -> CifarResNet:
    return CifarResNet(n, num_classes=check_int("num_classes", num_classes))


_CIFAR = dict(input_size=(3, 32, 32), family="cifar-resnet")


@register_model("resnet20", **_CIFAR)
def resnet20(*, num_classes: int = 10) -> CifarResNet:
    """ResNet-20 (n=3): 269,722 parameters with num_classes=10; 40.55M conv+linear MACs at 32x32."""
    return _build(3, num_classes)


@register_model("resnet32", **_CIFAR)
def resnet32(*, num_classes: int = 10) -> CifarResNet:
    """ResNet-32 (n=5): 464,154 parameters with num_classes=10; 68.86M conv+linear MACs at 32x32."""
    return _build(5, num_classes)


@register_model("resnet44", **_CIFAR)
def resnet44(*, num_classes: int = 10) -> CifarResNet:
    """ResNet-44 (n=7): 658,586 parameters with num_classes=10; 97.17M conv+linear MACs at 32x32."""
    return _build(7, num_classes)


@register_model("resnet56", **_CIFAR)
def resnet56(*, num_classes: int = 10) -> CifarResNet:
    """ResNet-56 (n=9): 853,018 parameters with num_classes=10; 125.49M conv+linear MACs at 32x32."""
    return _build(9, num_classes)
