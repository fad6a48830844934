"""TWN: Ternary Weight Networks (Li, Zhang & Liu 2016, arXiv:1605.04711), per layer.

Forward, on the latent weights ``w`` of one layer (n weights), recomputed every step::

    Δ   = 0.7 · mean|w|                      (eq. 10 of the paper: Δ* ≈ 0.7·E|W|)
    I_Δ = {i : |w_i| > Δ}
    α   = mean of |w_i| over I_Δ             (eq. 9: α* = Σ_{i∈I_Δ}|w_i| / |I_Δ|)
    w_t = α · sign(w) · 1{|w| > Δ}           values in {-α, 0, +α}

Δ and α are in weight units; both are functions of the latent weights, nothing is learned
(no quantizer parameters in the state_dict).  A layer whose weights are all zero has no
``|w| > Δ`` and gets α = 0 (all-zero ternary weights).

Backward, with ``g = ∂L/∂w_t`` (loss units per weight unit):

* ``∂L/∂w = g`` everywhere (straight-through estimator, no clipping), as the authors'
  Caffe code does (github.com/fengfu-chris/caffe-twns: the convolution's weight gradient
  is computed against the ternary weights and applied unchanged to the full-precision
  ones);
* no gradient flows through α or Δ: in that code α is a plain number computed in the
  forward (``alpha = <b, w> / <b, b>`` with ``b`` the {-1, 0, +1} codes), and so here.
  (Differentiating through α would add ``sign(w_i)/|I_Δ| · Σ_{j∈I_Δ} g_j sign(w_j)`` for
  ``i ∈ I_Δ``; we follow the reference and leave it out.)

Where we differ from that code: its GPU path divides by ``<b, b> + 1e-6`` (its CPU path
does not); we compute the exact mean.  Thresholds compare strictly (``|w| > Δ``), as its
``caffe_cpu_ternary`` does (``(x > delta) - (x < -delta)``).

Example: w = [0.9, 0.02, -0.5, 0.3, -0.05, 0.05]: mean|w| = 1.82/6 = 0.30333, Δ = 0.21233,
I_Δ = {0.9, -0.5, 0.3}, α = 1.7/3 = 0.56667, w_t = [α, 0, -α, α, 0, 0].
"""

from __future__ import annotations

import torch

from .base import WeightQuantizer, sign_fractions
from .family import QuantizerSpec, register_quantizer
from .function import _accumulate_stats

DELTA_FACTOR = 0.7  # Δ = 0.7 · mean|w| (the paper's approximation of the optimal threshold)


@torch.no_grad()
def twn_threshold_and_scale(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Δ, α) of latent weights ``w`` (0-dim tensors, weight units; see module doc)."""
    a = w.detach().abs()
    delta = DELTA_FACTOR * a.mean()
    keep = a > delta
    count = keep.sum()
    alpha = torch.where(count > 0, (a * keep).sum() / count.clamp(min=1),
                        torch.zeros((), dtype=a.dtype, device=a.device))
    return delta, alpha


class TWNWeight(torch.autograd.Function):
    """``w_t = α·sign(w)·1{|w|>Δ}`` with a straight-through gradient (module doc)."""

    @staticmethod
    def forward(ctx, w, stats):  # noqa: D401 - autograd API
        delta, alpha = twn_threshold_and_scale(w)
        pos = w > delta
        neg = w < -delta
        a = alpha.to(w.dtype)
        w_t = torch.where(pos, a, torch.where(neg, -a, torch.zeros((), dtype=w.dtype,
                                                                        device=w.device)))
        ctx.stats = stats
        if stats is not None:
            ctx.save_for_backward(pos, neg)
        return w_t

    @staticmethod
    def backward(ctx, g):
        if ctx.stats is not None:
            pos, neg = ctx.saved_tensors
            _accumulate_stats(ctx.stats, g, g, pos, neg)
        return g, None


class TWNQuantizer(WeightQuantizer):
    """TWN for one layer: Δ = 0.7·mean|w|, α = mean |w| over |w| > Δ, per step (module doc).

    ``wp``/``wn`` in the history are both α; ``delta`` is Δ.  Nothing is learned.
    """

    method = "twn"

    def __init__(self):
        super().__init__()
        self.last_delta: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return "delta=0.7*mean|w|, alpha=mean|w| over |w|>delta"

    @torch.no_grad()
    def delta(self, w: torch.Tensor) -> torch.Tensor:
        """The absolute threshold Δ = 0.7·mean|w| (0-dim tensor, no grad)."""
        return twn_threshold_and_scale(w)[0]

    @torch.no_grad()
    def alpha(self, w: torch.Tensor) -> torch.Tensor:
        """The scale α = mean |w| over |w| > Δ (0-dim tensor, no grad)."""
        return twn_threshold_and_scale(w)[1]

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return TWNWeight.apply(w, self.grad_stats)

    @torch.no_grad()
    def history_stats(self, w: torch.Tensor) -> torch.Tensor:
        delta, alpha = twn_threshold_and_scale(w)
        pos, zero, neg = sign_fractions((w > delta).to(torch.int8) - (w < -delta).to(torch.int8))
        a = alpha.float()
        return torch.stack([pos, zero, neg, a, a, delta.float()]).double()


register_quantizer(QuantizerSpec(
    "twn", "ternary", 2, "layer", (), "TWN: {-a, 0, +a} per layer, threshold 0.7*mean|w|",
    "Li, Zhang & Liu 2016", lambda weight: TWNQuantizer(), "1605.04711"))
