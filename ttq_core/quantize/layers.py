"""Ternary conv and linear layers: a float layer plus a separate :class:`TernaryQuantizer`.

The quantizer owns the two trained scales ``wp``, ``wn`` (0-dim parameters, so a layer's
state_dict gains ``<layer>.quantizer.wp`` and ``<layer>.quantizer.wn``) and the threshold
rule; the layer keeps its latent full-precision ``weight`` (and ``bias``) under the usual
names and only replaces the weight by ``quantizer(weight)`` in its forward.  With
``quantize_enabled = False`` a ternary layer computes exactly what the float layer does.

Scale initialisation (``TernaryQuantizer.init_scales_``, methods in :data:`SCALE_INITS`):

* ``"one"``: Wp = Wn = 1.0, as the authors' code does (czhu95/ternarynet,
  ``tw_ternarize``), and ``ttq-train``'s default.  Under batch norm the loss does not
  change when a layer's ternary weights are scaled, and ∂L/∂w_t grows like 1/Wp, so with
  Wp ≈ Wn ≈ 1 the three regions of the latent weights (multipliers Wp, 1, Wn) get steps of
  comparable size.  The layer's outputs are ~1/mean|w| larger than the FP layer's, so the
  batch-norm running statistics must be re-estimated before evaluating
  (``ttq_core.train.bn_calibration``).
* ``"least-squares"``: for the masks that Δ gives on the starting weights,
  ``Wp = mean(w | w > Δ)`` and ``Wn = mean(-w | w < -Δ)``, the least-squares optimal
  scales for fixed masks (d/dWp Σ_{w>Δ}(w − Wp)² = 0): the ternary network starts as
  close as possible, in weight L2 distance, to the FP one, which is what an untrained
  "what if ternarized" estimate wants.  Trained from there, Wp ≈ 0.07 gives the zero
  region (multiplier 1) ~14× larger steps than the ± regions and weight sparsity
  collapses (measured: README, "TTQ as implemented").  An empty region falls back to
  mean |w| (a layer of all-zero weights to 1).

Positivity guard: Wp, Wn must stay > 0 (a negative Wp flips the sign of every positive
weight; public implementations show the scales drifting negative).  After every optimizer
step the trainer calls :meth:`TernaryQuantizer.clamp_scales_`, a projection onto
``[min_scale, ∞)`` (default ``min_scale = 1e-4``), which leaves the gradients untouched.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .base import WeightQuantizer
from .family import QuantizerSpec, register_quantizer
from .function import ternary_weight
from .rules import get_rule

MIN_SCALE = 1e-4
SCALE_INITS = ("one", "least-squares")  # how TernaryQuantizer.init_scales_ may start Wp, Wn


class TernaryQuantizer(WeightQuantizer):
    """Holds Wp, Wn and the threshold rule of one layer; maps latent weights to ternary ones.

    The ``ttq`` method of the quantizer family (:mod:`ttq_core.quantize.family`).

    Args:
        rule: a registered threshold-rule name (``"threshold"`` or ``"sparsity"``).
        value: the rule's per-layer number (t, or target sparsity r).
        scale_grad: multiply the latent gradient by Wp / 1 / Wn per region (TTQ); False
            gives plain straight-through gradients (ablation).
        min_scale: lower bound enforced on Wp and Wn by :meth:`clamp_scales_`.
    """

    method = "ttq"

    def __init__(self, rule: str = "threshold", value: float = 0.05, scale_grad: bool = True,
                 min_scale: float = MIN_SCALE):
        super().__init__()
        self.rule = get_rule(rule)
        self.value = self.rule.check(value)
        self.scale_grad = bool(scale_grad)
        self.min_scale = float(min_scale)
        self.wp = nn.Parameter(torch.ones(()))
        self.wn = nn.Parameter(torch.ones(()))
        self.grad_stats: torch.Tensor | None = None  # set by the trainer to record gradients
        self.last_delta: torch.Tensor | None = None  # Δ of the latest forward (detached)

    def extra_repr(self) -> str:
        return (f"rule={self.rule.name}, value={self.value}, scale_grad={self.scale_grad}, "
                f"min_scale={self.min_scale}")

    @torch.no_grad()
    def delta(self, w: torch.Tensor) -> torch.Tensor:
        """The absolute threshold Δ for latent weights ``w`` (0-dim tensor, no grad)."""
        return self.rule.delta(w.detach().abs(), self.value)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        delta = self.delta(w)
        self.last_delta = delta
        return ternary_weight(w, self.wp, self.wn, delta, self.scale_grad, self.grad_stats)

    @torch.no_grad()
    def init_scales_(self, w: torch.Tensor, method: str = "least-squares") -> None:
        """Set Wp, Wn for latent weights ``w``: ``"one"`` (both 1.0, the authors' choice)
        or ``"least-squares"`` (the optimal scales for the initial masks); see module doc."""
        if method == "one":
            self.wp.fill_(1.0)
            self.wn.fill_(1.0)
            return
        if method != "least-squares":
            from ..errors import ConfigError
            raise ConfigError(f"--scale-init: must be one of {', '.join(SCALE_INITS)}, "
                              f"got {method!r}")
        w = w.detach().float()
        delta = self.delta(w)
        fallback = w.abs().mean() if w.abs().sum() > 0 else torch.ones((), device=w.device)
        pos, neg = w > delta, w < -delta
        wp = w[pos].mean() if pos.any() else fallback
        wn = (-w[neg]).mean() if neg.any() else fallback
        self.wp.fill_(max(float(wp), self.min_scale))
        self.wn.fill_(max(float(wn), self.min_scale))

    @torch.no_grad()
    def clamp_scales_(self) -> None:
        """Project Wp and Wn onto [min_scale, ∞) (call after each optimizer step)."""
        self.wp.clamp_(min=self.min_scale)
        self.wn.clamp_(min=self.min_scale)

    @torch.no_grad()
    def history_stats(self, w: torch.Tensor) -> torch.Tensor:
        """float64 ``[frac_pos, frac_zero, frac_neg, Wp, Wn, Δ]`` of latent ``w``."""
        w = w.detach()
        d = self.delta(w)
        n = w.numel()
        pos = (w > d).sum() / n
        neg = (w < -d).sum() / n
        return torch.stack([pos, 1 - pos - neg, neg, self.wp.detach().float(),
                            self.wn.detach().float(), d.float()]).double()


def _ttq_quantizer(weight: torch.Tensor, rule: str = "threshold", value: float = 0.05,
                   scale_grad: bool = True, min_scale: float = MIN_SCALE) -> TernaryQuantizer:
    """The ``ttq`` factory of the quantizer family (scales not yet initialised)."""
    return TernaryQuantizer(rule, value, scale_grad, min_scale)


register_quantizer(QuantizerSpec(
    "ttq", "ternary", 2, "layer", ("wp", "wn"),
    "TTQ: {-Wn, 0, +Wp}, Wp, Wn learned per layer", "Zhu et al., ICLR 2017",
    _ttq_quantizer, "1612.01064"))


class TernaryLayerMixin:
    """Shared behaviour of the toolkit's quantized layers: ``effective_weight()`` and the
    on/off switch.  The name is historical: a layer of any method of the quantizer family
    (ttq, twn, bwn, int4, int8; ``quantizer.method``) is one of these."""

    quantizer: WeightQuantizer
    quantize_enabled: bool

    def _attach(self, quantizer: WeightQuantizer) -> None:
        self.quantizer = quantizer
        self.quantize_enabled = True
        self._handed_weight = None  # (ternary weight, latent version) from quantize.grouped

    @torch.no_grad()
    def _copy_from(self, float_layer: nn.Module):
        """Copy weight/bias and train/eval mode from the float layer; return self."""
        self.weight.copy_(float_layer.weight)
        if float_layer.bias is not None:
            self.bias.copy_(float_layer.bias)
        self.train(float_layer.training)
        return self

    def effective_weight(self) -> torch.Tensor:
        """The weight the forward uses: ternary when quantization is on, else latent.

        Inside a model forward the ternary weight was usually computed already for all
        layers at once (:mod:`ttq_core.quantize.grouped`); it is used only while the latent
        weight is unchanged since (same version counter).

        Under ``torch.compile`` every layer ternarizes its own weight here: the grouped
        pre-hook stands aside (see ``grouped``), because dynamo can trace neither the
        hand-over (the version counter breaks the graph in this method, and the frame then
        recompiled once per layer shape until dynamo's limit, falling back to eager) nor
        the grouped function's data-dependent ``repeat_interleave``; the compiler fuses the
        per-layer ops instead, so the model compiles as one graph (``tests/test_compile.py``)."""
        if not self.quantize_enabled:
            return self.weight
        if torch.compiler.is_compiling():
            return self.quantizer(self.weight)
        handed = self._handed_weight
        if handed is not None and handed[1] == self.weight._version:
            return handed[0]
        return self.quantizer(self.weight)

    @torch.no_grad()
    def ternary_codes(self) -> torch.Tensor:
        """int8 codes in {-1, 0, +1} of the current latent weights (Δ from the rule, or
        TWN's Δ = 0.7·mean|w|).  A :class:`~ttq_core.quantize.base.NotTernaryError` for a
        binary or integer quantizer (bwn, int4, int8)."""
        if not self.quantizer.spec.is_ternary:
            raise self.quantizer.not_ternary("ternary_codes()")
        w = self.weight.detach()
        d = self.quantizer.delta(w)
        return ((w > d).to(torch.int8) - (w < -d).to(torch.int8))


class TernaryConv2d(TernaryLayerMixin, nn.Conv2d):
    """``nn.Conv2d`` whose forward uses the ternary weight of its quantizer."""

    def __init__(self, *args, quantizer: WeightQuantizer, **kwargs):
        super().__init__(*args, **kwargs)
        self._attach(quantizer)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, quantizer: WeightQuantizer) -> "TernaryConv2d":
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                  bias=conv.bias is not None, padding_mode=conv.padding_mode,
                  device=conv.weight.device, dtype=conv.weight.dtype, quantizer=quantizer)
        return new._copy_from(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class TernaryLinear(TernaryLayerMixin, nn.Linear):
    """``nn.Linear`` whose forward uses the ternary weight of its quantizer."""

    def __init__(self, *args, quantizer: WeightQuantizer, **kwargs):
        super().__init__(*args, **kwargs)
        self._attach(quantizer)

    @classmethod
    def from_float(cls, linear: nn.Linear, quantizer: WeightQuantizer) -> "TernaryLinear":
        new = cls(linear.in_features, linear.out_features, bias=linear.bias is not None,
                  device=linear.weight.device, dtype=linear.weight.dtype, quantizer=quantizer)
        return new._copy_from(linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


# Float layer type -> its ternary counterpart (extend to support more layer types).
TERNARY_LAYER_TYPES: dict[type, type] = {nn.Conv2d: TernaryConv2d, nn.Linear: TernaryLinear}
