"""Per-epoch history of quantized layers: weight fractions, scales, Δ and latent-gradient stats.

One history entry (a plain dict, stored in the checkpoint and the JSONL log) is::

    {"epoch": 3, "lr": 0.0098, "train_loss": 0.61, "train_acc": 0.79,
     "test_loss": 0.58, "test_acc": 0.80, "seconds": 12.3,
     "layers": {"layer1.0.conv1": {
         "frac_pos": 0.31, "frac_zero": 0.40, "frac_neg": 0.29,   # of the layer's weights
         "wp": 0.21, "wn": 0.19, "delta": 0.013,                 # scales and absolute threshold Δ
         "grad_abs_mean_pos": ..., "grad_abs_mean_zero": ..., "grad_abs_mean_neg": ...,
         "grad_abs_mean_scaled_pos": ..., ...}}}                  # mean |∂L/∂w| per region

Accuracies are fractions in [0, 1]; losses are mean cross-entropy per image (nats);
``lr`` is the learning rate of the epoch's last step; weight fractions and Δ are measured
on the weights at the end of the epoch.  The gradient statistics average |∂L/∂w_t|
("before scaling": the gradient reaching the ternary weight) and |∂L/∂w| ("after
scaling": the gradient applied to the latent weight, Wp/1/Wn times the former) over the
latent weights of each region, over the steps sampled during the epoch (every
``grad_stats_every`` steps), regions taken at each sampled step.  ``None`` where a region
was empty at every sampled step or no step was sampled.

Methods other than TTQ (``--quantizer``; :func:`ttq_core.quantize.layer_weight_stats`)
fill the same keys, measured on their quantized weights: ``frac_*`` the fractions of
quantized weights > 0, = 0, < 0; ``wp`` and ``wn`` both the method's scale (twn: α;
bwn: the mean over output channels of α_c; int4/int8: the mean learned step s_c, the grid
spacing in weight units, not a weight level); ``delta`` the zero threshold (twn:
Δ = 0.7·mean|w|; bwn: 0, there is no zero region; int: mean s_c / 2).  The gradient
statistics use the regions of the quantized weight's sign; "after scaling" is the
gradient the method applies to the latent weight (twn: equal to the one before; bwn:
× (1/n + α_c·1{|w| ≤ 1}); int: zero where clipped).
"""

from __future__ import annotations

import torch
from torch import nn

from ..quantize import layer_weight_stats, ternary_layers

REGIONS = ("pos", "zero", "neg")


class GradStatsRecorder:
    """Owns one 9-number float64 accumulator per quantized layer (see quantize.function).

    ``arm(True)`` makes the next backward pass add into them; ``arm(False)`` stops it.
    """

    def __init__(self, model: nn.Module):
        self.layers = dict(ternary_layers(model))
        device = next(model.parameters()).device
        self.buffers = {n: torch.zeros(9, dtype=torch.float64, device=device) for n in self.layers}

    def arm(self, on: bool) -> None:
        for name, layer in self.layers.items():
            layer.quantizer.grad_stats = self.buffers[name] if on else None

    def reset(self) -> None:
        for buf in self.buffers.values():
            buf.zero_()

    def summary(self) -> dict[str, dict[str, float | None]]:
        if not self.buffers:
            return {}
        table = torch.stack(list(self.buffers.values())).cpu().tolist()
        out = {}
        for name, row in zip(self.buffers, table):
            sums, scaled, counts = row[0:3], row[3:6], row[6:9]
            entry = {}
            for i, region in enumerate(REGIONS):
                c = counts[i]
                entry[f"grad_abs_mean_{region}"] = sums[i] / c if c else None
                entry[f"grad_abs_mean_scaled_{region}"] = scaled[i] / c if c else None
            out[name] = entry
        return out


def layer_history(model: nn.Module, recorder: GradStatsRecorder | None) -> dict[str, dict]:
    """The ``layers`` part of a history entry (weight stats + gradient stats)."""
    stats = layer_weight_stats(model)
    grads = recorder.summary() if recorder is not None else {}
    return {name: {**s, **grads.get(name, {})} for name, s in stats.items()}
