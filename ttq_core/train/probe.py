"""Activation-sparsity probe: the input zero fraction of every conv/linear layer after an
epoch, measured on a small fixed set of test images (``ttq-train --probe-images N``).

The probe images are the first N images of the test split in evaluation order (the same
images every epoch, so epochs are comparable), pushed through the model in eval mode
with no gradient; for each ``nn.Conv2d``/``nn.Linear`` the fraction of exact zeros in
its input tensor (zero padding not included: the hook sees the tensor before padding)
over all probe images is recorded.  A history entry then carries::

    "probe": {"images": 256, "seconds": 0.9,
              "act_sparsity": {"conv1": 0.0, "layer1.0.conv1": 0.41, ...}}

``seconds`` is the probe's own wall time (not included in the epoch's ``seconds``), so a
run states what the option cost.  This is the same quantity as the analysis's
``act_sparsity`` column (:mod:`ttq_analysis.activations`, mean over images of each image's
zero fraction); with equal-sized images the two agree.  Off by default (N = 0).
"""

from __future__ import annotations

import time

import torch
from torch import nn


def _layers(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


@torch.no_grad()
def probe_act_sparsity(model: nn.Module, data, images: int, batch_size: int = 250) -> dict:
    """``{"images", "seconds", "act_sparsity": {layer: zero fraction of its input}}`` over
    the first ``images`` images of ``data`` (a split with ``batches(batch_size)``).
    The model's train/eval mode is restored."""
    t0 = time.perf_counter()
    layers = _layers(model)
    zeros = {n: 0 for n in layers}
    total = {n: 0 for n in layers}

    def hook(name):
        def count(_module, inputs):
            x = inputs[0]
            zeros[name] += int((x == 0).sum())
            total[name] += x.numel()
        return count

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in layers.items()]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for x, _ in data.batches(batch_size):
            if seen >= images:
                break
            x = x[: images - seen]
            model(x)
            seen += x.shape[0]
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {"images": seen, "seconds": time.perf_counter() - t0,
            "act_sparsity": {n: zeros[n] / total[n] for n in layers if total[n]}}
