"""AlexNet (Krizhevsky et al. 2012) in the torchvision layout and naming.

Builds ``alexnet`` (torchvision's single-tower variant) and ``alexnet_bn`` (the
TTQ paper's variant: BatchNorm, no dropout).

Without batch norm (default) the module names and indices are torchvision's, so its
state_dicts load as they are::

    features:   0 conv 3->64 k11 s4 p2, 1 ReLU, 2 maxpool 3/2,
                3 conv 64->192 k5 p2, 4 ReLU, 5 maxpool 3/2,
                6 conv 192->384 k3 p1, 7 ReLU, 8 conv 384->256 k3 p1, 9 ReLU,
                10 conv 256->256 k3 p1, 11 ReLU, 12 maxpool 3/2
    avgpool:    AdaptiveAvgPool2d((6, 6))
    classifier: 0 Dropout, 1 Linear 9216->4096, 2 ReLU, 3 Dropout,
                4 Linear 4096->4096, 5 ReLU, 6 Linear 4096->num_classes

``dropout`` sets the dropout probability; with ``dropout=0`` the Dropout modules are
replaced by ``nn.Identity`` so the indices above do not move.

With ``batch_norm=True`` a BatchNorm2d follows every conv (conv, BN, ReLU; the convs
then have no bias) and a BatchNorm1d follows the two hidden linears (which then have
no bias either), which shifts the indices: features = conv 0, BN 1, ReLU 2, pool 3,
conv 4, BN 5, ReLU 6, pool 7, conv 8, BN 9, ReLU 10, conv 11, BN 12, ReLU 13,
conv 14, BN 15, ReLU 16, pool 17; classifier = Dropout 0, Linear 1, BN 2, ReLU 3,
Dropout 4, Linear 5, BN 6, ReLU 7, Linear 8.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ttq_core.models.registry import check_bool, check_float, check_int, register_model

__all__ = ["AlexNet", "alexnet"]

# (in, out, kernel, stride, padding, maxpool after)
_CONVS = (
    (3, 64, 11, 4, 2, True),
    (64, 192, 5, 1, 2, True),
    (192, 384, 3, 1, 1, False),
    (384, 256, 3, 1, 1, False),
    (256, 256, 3, 1, 1, True),
)


class AlexNet(nn.Module):
    """AlexNet; see the module docstring for the layout."""

    def __init__(self, num_classes: int = 1000, batch_norm: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out, k, s, p, pool in _CONVS:
            layers.append(nn.Conv2d(c_in, c_out, k, stride=s, padding=p, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))

        def drop() -> nn.Module:
            return nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()

        head: list[nn.Module] = []
        for f_in, f_out in ((256 * 6 * 6, 4096), (4096, 4096)):
            head.append(drop())
            head.append(nn.Linear(f_in, f_out, bias=not batch_norm))
            if batch_norm:
                head.append(nn.BatchNorm1d(f_out))
            head.append(nn.ReLU(inplace=True))
        head.append(nn.Linear(4096, num_classes))
        self.classifier = nn.Sequential(*head)

        for m in self.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


@register_model("alexnet_bn", input_size=(3, 224, 224), family="alexnet", defaults={"batch_norm": True, "dropout": 0.0})
@register_model("alexnet", input_size=(3, 224, 224), family="alexnet")
def alexnet(*, num_classes: int = 10, batch_norm: bool = False, dropout: float = 0.5) -> AlexNet:
    """AlexNet: 61,100,840 parameters with num_classes=1000 (57,044,810 with 10) and
    714,188,480 conv+linear MACs at 224x224, without batch norm.

    Registered as ``alexnet`` (torchvision variant) and ``alexnet_bn`` (defaults
    ``batch_norm=True, dropout=0.0``, the TTQ paper's variant).
    """
    return AlexNet(
        num_classes=check_int("num_classes", num_classes),
        batch_norm=check_bool("batch_norm", batch_norm),
        dropout=check_float("dropout", dropout, 0.0, 1.0),
    )
