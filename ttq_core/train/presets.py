"""Named training recipes for ``ttq-train --preset NAME``.

A preset fills in option defaults; any flag given on the command line still wins.  Each
preset keeps two things apart: ``settings``, what ``ttq-train`` will run (this toolkit
trains with SGD + momentum only), and ``reference``, the recipe as published, with its
source, including values this toolkit cannot reproduce or that we could not verify.

Sources: Zhu, Han, Mao, Dally, "Trained Ternary Quantization", ICLR 2017 (the paper), and
the authors' released TensorFlow/tensorpack code (github.com/czhu95/ternarynet,
``examples/Ternary-Net/tw-imagenet-alexnet.py``).  The paper states for ImageNet: the
AlexNet variant *without dropout and with batch normalization* (our ``alexnet_bn``), the
threshold factor t = 0.05, the first and last layers kept in full precision, and the
ternary AlexNet trained *from scratch*; it gives no full ImageNet optimiser schedule in
the text — the AlexNet numbers below come from the released script; for ResNet-18 we
found no published schedule, and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    settings: dict[str, Any]                      # TrainConfig field -> value applied
    reference: dict[str, Any] = field(default_factory=dict)  # the published recipe, as given
    notes: str = ""                               # deviations and uncertainties


PRESETS: dict[str, Preset] = {}


def _register(p: Preset) -> Preset:
    PRESETS[p.name] = p
    return p


_register(Preset(
    name="imagenet-alexnet-bn",
    summary="TTQ AlexNet (batch norm, no dropout) on ImageNet, trained from scratch",
    settings=dict(dataset="imagenet", arch="alexnet_bn", mode="ttq", threshold=0.05,
                  epochs=70, batch_size=64, lr=0.02, momentum=0.9, weight_decay=5e-6,
                  schedule="step", milestones=[56 / 70, 64 / 70], gamma=0.2,
                  warmup_epochs=1),
    reference={
        "source": "TTQ paper (architecture, t, from scratch) + the authors' released "
                  "tw-imagenet-alexnet.py (optimiser and schedule)",
        "architecture": "AlexNet, dropout removed, batch norm added; first conv and last "
                        "FC full precision",
        "threshold_t": 0.05,
        "init": "from scratch",
        "optimizer": "Adam, lr 1e-4, epsilon 1e-5",
        "schedule": "lr 1e-4, then 2e-5 from epoch 56 and 4e-6 from epoch 64 (x0.2 twice)",
        "epochs": "max_epoch 100 'epochs' of 10,000 steps each",
        "batch_size": "32 per GPU tower; the number of towers is not stated",
        "weight_decay": "5e-6 (L2), on the fully connected layers' weights only",
        "augmentation": "random rescale (shorter side 224..307, aspect jitter 0.85..1.15), "
                        "random 224 crop, flip; val: shorter side 256, center 224 crop",
    },
    notes="Deviations: this toolkit trains with SGD, so lr/momentum are SGD values chosen "
          "for it (not the authors'); the x0.2 steps sit at the authors' epochs 56 and 64 "
          "and the run ends at 70 (theirs at 100, with the lr already 4e-6); weight decay 5e-6 applies to every conv/linear "
          "weight here, not only FC; augmentation is RandomResizedCrop + flip. The "
          "authors' 'epoch' is 10,000 steps, so their epoch counts are not data passes "
          "unless 4 towers of 32 were used (unknown). batch_size is per process: the "
          "global batch is world_size x 64 (256 on 4 GPUs).",
))

_register(Preset(
    name="imagenet-resnet18",
    summary="TTQ ResNet-18 on ImageNet, fine-tuned from a full-precision ResNet-18 (--init)",
    settings=dict(dataset="imagenet", arch="resnet18", mode="ttq", threshold=0.05,
                  epochs=40, batch_size=64, lr=0.01, momentum=0.9, weight_decay=1e-4,
                  schedule="step", milestones=[0.5, 0.75], gamma=0.1, warmup_epochs=0),
    reference={
        "source": "TTQ paper, ImageNet section and table (ResNet-18 top-1/top-5)",
        "architecture": "ResNet-18 (torchvision layout); first conv and last FC full precision",
        "threshold_t": 0.05,
        "init": "not stated in a form we could verify",
        "optimizer": "not stated in a form we could verify",
        "schedule": "not stated in a form we could verify",
        "epochs": "not stated in a form we could verify",
        "batch_size": "not stated in a form we could verify",
        "weight_decay": "not stated in a form we could verify",
    },
    notes="Only the architecture and t = 0.05 are the paper's. The optimiser values are "
          "this toolkit's choice, from its earlier CIFAR recipe (fine-tune an FP model with "
          "SGD at lr 0.01, x0.1 steps at 50% and 75% of the run; the CIFAR default is now "
          "lr 0.1 with Wp = Wn = 1, the authors' choice, not yet measured on ImageNet) with the usual ImageNet "
          "weight decay 1e-4; pass --init with an FP ResNet-18 checkpoint or state_dict "
          "(e.g. torchvision's, saved as a state_dict). batch_size is per process "
          "(global batch = world_size x 64).",
))


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"--preset: unknown preset {name!r}; known: "
                          f"{', '.join(PRESETS)}") from None
