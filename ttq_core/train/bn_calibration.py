"""Re-estimate batch-norm running statistics on training images (no gradient, no step).

Why: ``ttq-train --mode ttq`` starts the scales at Wp = Wn = 1 (the authors' choice), so a
ternary layer's outputs are ~1/mean|w| (often 10-20×) larger than those of the FP layer it
replaces, and the running mean/variance the FP model's batch norms carry no longer fit.
Training itself normalises with batch statistics and does not care, but evaluation uses
the running ones: without this, a one-epoch fine-tune on 1,000 images tested at 20.6 %
(75 % train accuracy).  This is the standard post-training "BN re-estimation".  The trainer does it once after
ternarizing and again after every TTQ epoch, before evaluating and saving: in a short run
the momentum-averaged statistics lag weights that moved fast (one epoch of 7 steps at LR
0.1 on 1,000 images tested at 24.5 %, 69.5 % after re-estimation).  Training is not
affected: in train mode batch norm normalises with batch statistics, never the running
ones, so a run with and without re-estimation takes the same steps (tested).

How: every ``_BatchNorm`` is reset and switched to a cumulative average
(``momentum=None``), the model runs in train mode under ``no_grad`` over ``images``
training images (fixed order from ``seed``, no augmentation), and the momenta are put
back.  Only running statistics change (``num_batches_tracked`` counts the batches seen).
The result is the same on every rank of a torchrun launch (same images everywhere).
"""

from __future__ import annotations

import torch
from torch import nn

CALIBRATION_SEED = 0x7_7171  # fixed: the images used do not depend on the run's seed


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, data, images: int, batch_size: int = 250,
                          seed: int = CALIBRATION_SEED) -> int:
    """Re-estimate every batch norm's running statistics of ``model`` on ``images``
    training images of ``data`` (a ``BatchSource`` with ``batches``); return how many
    images were used (0 when the model has no batch norm or ``images`` is 0)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats]
    if images <= 0 or not bns:
        return 0
    momenta = [bn.momentum for bn in bns]
    was_training = model.training
    gen = torch.Generator(device=getattr(data, "device", "cpu"))
    gen.manual_seed(seed)
    used = 0
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average over the batches seen
        model.train()
        for x, _ in data.batches(min(batch_size, images), shuffle=True, generator=gen):
            model(x[: images - used])
            used += min(x.shape[0], images - used)
            if used >= images:
                break
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)
    return used
