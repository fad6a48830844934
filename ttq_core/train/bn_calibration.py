"""Re-estimate batch-norm running statistics on training images (no gradient, no step).

Why: ``ttq-train --mode ttq`` starts the scales at Wp = Wn = 1 (the authors' choice), so a
ternary layer's outputs are ~1/mean|w| (often 10-20×) larger than those of the FP layer it
replaces, and the running mean/variance the FP model's batch norms carry no longer fit.
Training itself normalises with batch statistics and does not care, but evaluation uses
the running ones: without this, a one-epoch fine-tune on 1,000 images tested at 20.6 %
(75 % train accuracy).  This is the standard post-training "BN re-estimation".  The trainer
does it once after ternarizing and again after every TTQ epoch, before evaluating and
saving: in a short run the momentum-averaged statistics lag weights that moved fast (one
epoch of 7 steps at LR 0.1 on 1,000 images tested at 24.5 %, 69.5 % after re-estimation).
Training is not affected: in train mode batch norm normalises with batch statistics, never
the running ones, so a run with and without re-estimation takes the same steps (tested).

Under the training transform (``augment=True``, the default since toolkit 0.2): the
weights learned under the statistics of *augmented* batches (random crop with zero
padding, horizontal flip), so the statistics are estimated on batches made by that same
transform ("Rethinking 'Batch' in BatchNorm", Wu & Johnson 2021, Sec. 3: train–test
inconsistency).  Estimated on unaugmented images instead (what toolkit 0.1 did), the
zero-padded borders are missing from the statistics and the committed 40-epoch ResNet-20
TTQ run tested at 84.72 % instead of 87.4 % on the same weights (see
``benchmarks/bn_reestimation.py`` and its results for the measured table).

How: the model runs in train mode under ``no_grad`` over ``images`` training images
(fixed order and augmentation from ``seed``); each batch norm's running buffers become the
population mean and variance of everything it normalised over those images (each batch
normalised by its own statistics, as in training).  Only running statistics change
(``num_batches_tracked`` counts the batches seen); momenta and the train/eval mode are put
back.  This is the estimator of fvcore's ``precise_bn.update_bn_stats`` (Wu & Johnson
2021, appendix: the variance includes the spread of the batch means); a test checks the
two agree on the same batches.  fvcore itself is not called because ``ttq_core`` must
train where only torch is installed (GUIDE.md).  Until toolkit 0.2 the estimate was the
equal-weight mean of the per-batch variances, 0.1-1 % lower.  The result is the same on
every rank of a torchrun launch (same images and augmentation everywhere).
"""

from __future__ import annotations

import torch
from torch import nn

CALIBRATION_SEED = 0x7_7171  # fixed: the images used do not depend on the run's seed
DEFAULT_BN_IMAGES = 2_000    # chosen by measurement (benchmarks/bn_reestimation.py)


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch norms of ``model`` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats]


class PopulationStatistics:
    """Mean and variance of every element a batch norm normalised, over all batches seen
    (batches of unequal size weighted by their element count).  Per batch it takes the
    batch's mean and unbiased variance over ``n`` elements per channel (what a batch norm
    with ``momentum=1.0`` leaves in its running buffers); ``var`` is the population
    variance of all elements together, i.e. the mean of the batch variances plus the
    variance of the batch means (Wu & Johnson 2021, appendix; fvcore's estimator)."""

    def __init__(self, like: torch.Tensor):
        self.mean = torch.zeros_like(like, dtype=torch.float64)
        self.square_mean = torch.zeros_like(like, dtype=torch.float64)
        self.count = 0

    def add(self, batch_mean: torch.Tensor, batch_var_unbiased: torch.Tensor, n: int) -> None:
        self.count += n
        w = n / self.count
        mean = batch_mean.double()
        square = mean.square() + batch_var_unbiased.double() * ((n - 1) / n)
        self.mean += (mean - self.mean) * w
        self.square_mean += (square - self.square_mean) * w

    @property
    def var(self) -> torch.Tensor:
        return self.square_mean - self.mean.square()


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, data, images: int, batch_size: int = 250,
                          seed: int = CALIBRATION_SEED, augment: bool = True) -> int:
    """Re-estimate every batch norm's running statistics of ``model`` on ``images``
    training images of ``data`` (a ``BatchSource`` with ``batches``), drawn through the
    training transform when ``augment`` (random crop and flip, as in training); return how
    many images were used (0 when the model has no batch norm or ``images`` is 0).

    The running mean/variance become the population statistics of the normalised
    elements over all those images (:class:`PopulationStatistics`)."""
    bns = batchnorms(model)
    if images <= 0 or not bns:
        return 0
    momenta = [bn.momentum for bn in bns]
    was_training = model.training
    gen = torch.Generator(device=getattr(data, "device", "cpu"))
    gen.manual_seed(seed)
    stats = [PopulationStatistics(bn.running_mean) for bn in bns]
    seen: dict[nn.Module, int] = {}

    def count_elements(module, inputs):  # elements per channel this forward normalises
        seen[module] = inputs[0].numel() // inputs[0].shape[1]

    hooks = [bn.register_forward_pre_hook(count_elements) for bn in bns]
    used = 0
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = 1.0  # the buffers hold the last batch's mean and unbiased variance
        model.train()
        for x, _ in data.batches(min(batch_size, images), shuffle=True, augment=augment,
                                 generator=gen):
            seen.clear()
            model(x[: images - used])
            for bn, st in zip(bns, stats):
                if bn in seen:  # a batch norm this forward did not use adds nothing
                    st.add(bn.running_mean, bn.running_var, seen[bn])
            used += min(x.shape[0], images - used)
            if used >= images:
                break
        for bn, st in zip(bns, stats):
            if st.count:
                bn.running_mean.copy_(st.mean)
                bn.running_var.copy_(st.var)
    finally:
        for h in hooks:
            h.remove()
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)
    return used
