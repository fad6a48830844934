"""ImageNet ResNet-18 (He et al. 2016) in the torchvision layout and naming.

Builds ``resnet18``: ``conv1`` (7x7, stride 2, pad 3, no bias), ``bn1``, ``relu``,
``maxpool`` (3x3, stride 2, pad 1), ``layer1`` .. ``layer4`` of two BasicBlocks each
(64/128/256/512 channels; the first block of layers 2-4 has stride 2), ``avgpool``
(AdaptiveAvgPool2d((1, 1))) and ``fc`` (512 -> num_classes, with bias).

A BasicBlock has ``conv1``, ``bn1``, ``relu``, ``conv2``, ``bn2`` and, only where the
shape changes (``layer2.0``, ``layer3.0``, ``layer4.0``), ``downsample`` =
Sequential(``0``: 1x1 conv stride 2 without bias, ``1``: BatchNorm).  These names
match torchvision's, so its state_dicts load as they are.

Init as in torchvision: ``kaiming_normal_`` (fan_out, relu) on convs, BatchNorm
weight 1 and bias 0, PyTorch's default init for ``fc``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ttq_core.models.registry import check_bool, check_int, register_model

__all__ = ["BasicBlock", "ImageNetResNet", "resnet18"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN pairs with a residual connection (torchvision naming)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ImageNetResNet(nn.Module):
    """ResNet with BasicBlocks for 224x224 inputs; ``layers`` blocks per stage."""

    def __init__(self, layers: tuple[int, int, int, int], num_classes: int = 1000, zero_init_residual: bool = False) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0], stride=1)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


@register_model("resnet18", input_size=(3, 224, 224), family="imagenet-resnet")
def resnet18(*, num_classes: int = 10, zero_init_residual: bool = False) -> ImageNetResNet:
    """ResNet-18: 11,689,512 parameters with num_classes=1000 (11,181,642 with 10);
    1,814,073,344 conv+linear MACs at 224x224 with num_classes=1000.

    ``zero_init_residual`` zero-initialises the last BN weight of every block.
    """
    return ImageNetResNet(
        (2, 2, 2, 2),
        num_classes=check_int("num_classes", num_classes),
        zero_init_residual=check_bool("zero_init_residual", zero_init_residual),
    )
