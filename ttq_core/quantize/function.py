"""The TTQ weight function: latent weight + (Wp, Wn, Δ) -> ternary weight, with TTQ's gradients.

Forward (Zhu et al., ICLR 2017, eq. 6), elementwise on the latent weight ``w``::

    w_t = +Wp  where w >  Δ
    w_t =  0   where |w| <= Δ
    w_t = -Wn  where w < -Δ

Backward, with ``g = ∂L/∂w_t``:

* ``∂L/∂Wp = Σ_{w>Δ} g`` (eq. 7);
* ``∂L/∂Wn = -Σ_{w<-Δ} g``.  This is the mathematically correct sign: ``w_t = -Wn``
  there, so ``∂w_t/∂Wn = -1``.  The paper prints ``+Σ``; with that sign gradient descent
  would move Wn the wrong way.  We implement the correct sign and test it by finite
  differences;
* ``∂L/∂w = Wp·g`` where ``w>Δ``, ``1·g`` where ``|w|<=Δ``, ``Wn·g`` where ``w<-Δ``
  (eq. 8): the scales act as per-region learning-rate multipliers on the latent weights.
  With ``scale_grad=False`` the latent gradient is the plain straight-through ``g``
  everywhere (the ablation of those multipliers).

Δ carries no gradient (it is recomputed from the latent weights every step).

Optionally the backward adds gradient statistics into a caller-owned float64 buffer
``stats`` of 9 numbers without synchronising the device::

    stats[0:3]  Σ|g|           over the +, 0, - regions   (before scaling)
    stats[3:6]  Σ|∂L/∂w|       over the +, 0, - regions   (after scaling)
    stats[6:9]  element counts of the +, 0, - regions

so a trainer can report mean |∂L/∂w| per region, before and after scaling.
"""

from __future__ import annotations

import torch


class TernaryWeight(torch.autograd.Function):
    """Autograd function implementing TTQ's forward and three gradients (see module doc)."""

    @staticmethod
    def forward(ctx, w, wp, wn, delta, scale_grad: bool, stats):  # noqa: D401 - autograd API
        pos = w > delta
        neg = w < -delta
        zero = torch.zeros((), dtype=w.dtype, device=w.device)
        w_t = torch.where(pos, wp.to(w.dtype), torch.where(neg, -wn.to(w.dtype), zero))
        ctx.save_for_backward(pos, neg, wp, wn)
        ctx.scale_grad = scale_grad
        ctx.stats = stats
        return w_t

    @staticmethod
    def backward(ctx, g):
        pos, neg, wp, wn = ctx.saved_tensors
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        grad_wp = torch.where(pos, g, zero).sum().reshape(wp.shape).to(wp.dtype)
        grad_wn = (-torch.where(neg, g, zero).sum()).reshape(wn.shape).to(wn.dtype)
        if ctx.scale_grad:
            one = torch.ones((), dtype=g.dtype, device=g.device)
            multiplier = torch.where(pos, wp.to(g.dtype), torch.where(neg, wn.to(g.dtype), one))
            grad_w = g * multiplier
        else:
            grad_w = g
        if ctx.stats is not None:
            _accumulate_stats(ctx.stats, g, grad_w, pos, neg)
        return grad_w, grad_wp, grad_wn, None, None, None


def _accumulate_stats(stats: torch.Tensor, g: torch.Tensor, grad_w: torch.Tensor,
                      pos: torch.Tensor, neg: torch.Tensor) -> None:
    """Add per-region Σ|g|, Σ|grad_w| and counts into ``stats`` (no device sync)."""
    zero_region = ~(pos | neg)
    masks = torch.stack([pos, zero_region, neg]).reshape(3, -1)
    abs_g = g.detach().abs().reshape(1, -1).to(torch.float64)
    abs_w = grad_w.detach().abs().reshape(1, -1).to(torch.float64)
    m = masks.to(torch.float64)
    stats[0:3] += (m * abs_g).sum(dim=1)
    stats[3:6] += (m * abs_w).sum(dim=1)
    stats[6:9] += m.sum(dim=1)


def ternary_weight(w: torch.Tensor, wp: torch.Tensor, wn: torch.Tensor, delta: torch.Tensor,
                   scale_grad: bool = True, stats: torch.Tensor | None = None) -> torch.Tensor:
    """Ternarize ``w`` with scales ``wp``, ``wn`` (positive scalars) at threshold ``delta``.

    ``delta`` is an absolute weight value (not the factor t); gradients as in the module
    docstring.  Example: ``w = [0.9, 0.02, -0.5]``, Δ = 0.05, Wp = 1.5, Wn = 0.7 gives
    ``[1.5, 0, -0.7]``.
    """
    return TernaryWeight.apply(w, wp, wn, delta, scale_grad, stats)
