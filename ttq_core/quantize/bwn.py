"""BWN: the binary-weight networks of XNOR-Net (Rastegari, Ordonez, Redmon & Farhadi, ECCV 2016,
arXiv:1603.05279, Sec. 3.1), one scale per output channel.

Forward, on the latent weights ``w`` of one layer, output channel c holding n weights
(n = C_in/groups · k_h · k_w for a conv, in_features for a linear layer)::

    α_c = (1/n) Σ_{i∈c} |w_i|                (the paper's per-filter α = ‖W‖_ℓ1 / n)
    b_i = sign(w_i), with sign(0) = +1
    w_b = α_c · b_i                          two values ±α_c per output channel

α_c is in weight units and recomputed from the latent weights every step; nothing is
learned (no quantizer parameters in the state_dict).

Backward, with ``g = ∂L/∂w_b`` (loss units per weight unit), the paper's equation::

    ∂L/∂w_i = g_i · (1/n + α_c · 1{|w_i| ≤ 1})

(the 1/n term is the paper's account of α's dependence on w_i; the indicator is the
clipped straight-through estimator of sign, ∂sign/∂r = 1{|r| ≤ 1}, Hubara et al. 2016).
α_c receives no gradient of its own: it is not a parameter.  We chose the paper's
equation over plain autograd through α (whose exact term would be
``sign(w_i)/n · Σ_{j∈c} g_j sign(w_j)``, a sum over the channel, where the paper keeps
only ``g_i/n``).

Where we follow the authors' code (github.com/allenai/XNOR-Net, ``util.lua``) and where
not:

* follow: per-filter α = mean|w| over the output channel; binary weights in the forward
  and backward of the layer, the gradient applied to the latent weights; the clipped STE
  and the 1/n term; first and last layer full precision (their loop skips the first and
  last conv; here ``--keep-fp``, as for every method);
* not followed: before each step the code mean-centres every filter's weights over its
  input channels (``meancenterConvParms``) and clamps the latent weights to [-1, 1]
  (``clampConvParms``); we do neither (the latent weights stay as the optimizer leaves
  them, as for every other method here).  After the backward it multiplies the gradient
  by an extra ``n·(1 − 1/C_in)`` (``updateBinaryGradWeight``), a constant per-layer
  learning-rate factor of ~n; we keep the paper's equation, so ``--lr`` means the same
  thing as for the other methods.  Its indicator is strict (``|w| < 1``; with clamped
  latents, weights at exactly ±1 get only the 1/n term); ours is the paper's ``≤``.

Example (one channel, n = 4): w = [0.5, -0.25, 0, -2]: α = 2.75/4 = 0.6875,
w_b = [0.6875, -0.6875, 0.6875, -0.6875]; with g = [1, 2, 3, 4]:
∂L/∂w = [1·(0.25 + 0.6875), 2·0.9375, 3·0.9375, 4·0.25] = [0.9375, 1.875, 2.8125, 1.0].
"""

from __future__ import annotations

import torch

from .base import WeightQuantizer, sign_fractions
from .family import QuantizerSpec, register_quantizer
from .function import _accumulate_stats

STE_CLIP = 1.0  # |w| above which the sign's straight-through gradient is zero (Hubara et al.)


def _channel_view(per_channel: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``per_channel`` (shape [C_out]) shaped to broadcast over ``w`` ([C_out, ...])."""
    return per_channel.reshape((-1,) + (1,) * (w.dim() - 1))


@torch.no_grad()
def bwn_scales(w: torch.Tensor) -> torch.Tensor:
    """α_c = mean |w| over each output channel (shape [C_out], weight units, no grad)."""
    return w.detach().abs().reshape(w.shape[0], -1).mean(dim=1)


class BWNWeight(torch.autograd.Function):
    """``w_b = α_c·sign(w)`` with the paper's gradient (module doc)."""

    @staticmethod
    def forward(ctx, w, stats):  # noqa: D401 - autograd API
        alpha = _channel_view(bwn_scales(w).to(w.dtype), w)
        pos = w >= 0  # sign(0) = +1
        w_b = torch.where(pos, alpha, -alpha)
        ctx.save_for_backward(w, alpha, pos)
        ctx.stats = stats
        return w_b

    @staticmethod
    def backward(ctx, g):
        w, alpha, pos = ctx.saved_tensors
        n = w[0].numel()
        inside = (w.abs() <= STE_CLIP).to(g.dtype)
        grad_w = g * (1.0 / n + alpha.to(g.dtype) * inside)
        if ctx.stats is not None:
            _accumulate_stats(ctx.stats, g, grad_w, pos, ~pos)
        return grad_w, None


class BWNQuantizer(WeightQuantizer):
    """BWN for one layer: ±α_c per output channel, α_c = mean|w_c| (module doc).

    In the history ``wp`` and ``wn`` are both the mean of α_c over the output channels;
    ``delta`` is 0 (the sign's threshold: there is no zero region).  Nothing is learned.
    """

    method = "bwn"

    def extra_repr(self) -> str:
        return "alpha_c=mean|w| per output channel, sign(0)=+1"

    @torch.no_grad()
    def alpha(self, w: torch.Tensor) -> torch.Tensor:
        """α_c per output channel (shape [C_out], no grad)."""
        return bwn_scales(w)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return BWNWeight.apply(w, self.grad_stats)

    @torch.no_grad()
    def history_stats(self, w: torch.Tensor) -> torch.Tensor:
        pos, zero, neg = sign_fractions(torch.where(w >= 0, 1, -1))
        a = bwn_scales(w).float().mean()
        return torch.stack([pos, zero, neg, a, a, torch.zeros_like(a)]).double()


register_quantizer(QuantizerSpec(
    "bwn", "binary", 1, "output channel", (),
    "BWN (XNOR-Net): +-a_c, a_c = mean|w| per output channel", "Rastegari et al., ECCV 2016",
    lambda weight: BWNQuantizer(), "1603.05279"))
