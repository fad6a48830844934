""""What if this FP network were ternarized?": an untrained estimate worth reading.

Ternarizing a trained FP network at threshold t (least-squares Wp/Wn, no training) keeps
its batch norms' running statistics, which were estimated for the FP weights; the ternary
layers' outputs have other means and variances, so the network evaluated as is often sits
at chance (10 % on CIFAR-10).  The standard post-training remedy, also what ``ttq-train``
does after ternarizing (:mod:`ttq_core.train.bn_calibration`), is to re-estimate those
statistics on a few hundred training images, drawn through the training augmentation
as the trainer does: forward passes only, **no weight is trained**.
:func:`ternarize_untrained` does both and keeps the accuracy before the re-estimation, so a report can show before and after on the same test images.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ttq_core.quantize import ternarize
from ttq_core.train.bn_calibration import recalibrate_batchnorm

from .activations import run_batches

DEFAULT_BN_IMAGES = 500  # training images for the batch-norm re-estimate
# the images pass through the training augmentation, as when ttq-train re-estimates
# (ttq_core.train.bn_calibration; measured in benchmarks/results/cpu-2026-11-28/)
BN_TRANSFORM = "training augmentation (random crop + flip)"
EVAL_BATCH = 256


@dataclass
class WhatIf:
    """An untrained ternary copy of an FP ``model`` and how it got there.

    ``accuracy_before_bn``: top-1 on the evaluation images right after ternarizing (None
    without labels); ``bn_images``: training images the running statistics were
    re-estimated on (0: not done); ``bn_layers``: batch norms re-estimated;
    ``calibration_source``: which split those images came from."""

    model: nn.Module
    threshold: float
    accuracy_before_bn: float | None
    bn_images: int
    bn_layers: int
    calibration_source: str

    def meta(self, accuracy_after_bn: float | None) -> dict:
        """JSON-able record for ``Analysis.meta["what_if"]``."""
        return {"threshold": self.threshold, "weights_trained": False,
                "scales": "least-squares Wp/Wn per layer, not trained",
                "accuracy_before_bn": self.accuracy_before_bn,
                "accuracy_after_bn": accuracy_after_bn if self.bn_images else None,
                "bn_reestimation": {"images": self.bn_images, "batch_norm_layers": self.bn_layers,
                                    "source": self.calibration_source,
                                    "transform": BN_TRANSFORM}}


def evaluate_accuracy(model: nn.Module, data, device, batches: int | None = None) -> float | None:
    """Top-1 accuracy of ``model`` (eval mode, no grad) on a ``BatchSource``'s first
    ``batches`` batches of :data:`EVAL_BATCH` (all by default); None without labels."""
    def limited():
        for i, (x, y) in enumerate(data.batches(EVAL_BATCH)):
            if batches is not None and i >= batches:
                return
            yield x, y
    return run_batches(model, limited(), torch.device(device), progress=False).accuracy


def ternarize_untrained(model: nn.Module, threshold: float, eval_data, calibration_data,
                        bn_images: int = DEFAULT_BN_IMAGES, device="cpu",
                        batches: int | None = None,
                        calibration_source: str = "training split") -> WhatIf:
    """A ternarized copy of ``model`` (``model`` itself is untouched) with batch-norm
    statistics re-estimated on ``bn_images`` images of ``calibration_data`` (a
    ``BatchSource`` of training images normalised as ``model`` expects; None or 0 images:
    skipped), and its accuracy on ``eval_data`` before that step."""
    ternary = ternarize(copy.deepcopy(model), threshold=threshold).to(device)
    before = evaluate_accuracy(ternary, eval_data, device, batches) if eval_data is not None \
        else None
    bns = [m for m in ternary.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats]
    used = 0
    if calibration_data is not None and bn_images > 0 and bns:
        used = recalibrate_batchnorm(ternary, calibration_data, bn_images)
    ternary.eval()
    return WhatIf(ternary, float(threshold), before, used, len(bns) if used else 0,
                  calibration_source)


__all__ = ["BN_TRANSFORM", "DEFAULT_BN_IMAGES", "WhatIf", "evaluate_accuracy", "ternarize_untrained"]
