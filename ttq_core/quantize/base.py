"""What every weight quantizer of the family offers (``ttq``, ``twn``, ``bwn``, ``int4``, ``int8``).

A quantizer is a small ``nn.Module`` handed to a :class:`~ttq_core.quantize.layers.TernaryConv2d`
or :class:`~ttq_core.quantize.layers.TernaryLinear` (the layer classes keep their names
for every method: existing callers test ``isinstance(m, TernaryLayerMixin)``).  The layer
keeps its latent full-precision ``weight``; ``quantizer(weight)`` returns the quantized
weight its forward uses.  Each method's module states its exact forward and gradients.

The common interface (:class:`WeightQuantizer`):

* ``method``: the registry name (``"ttq"``, ``"twn"``, ...) and ``spec``: its registry
  entry (:data:`ttq_core.quantize.family.QUANTIZERS`);
* learned parameters, if any, are attributes named in ``spec.learned`` (so they appear in
  the state_dict under ``<layer>.quantizer.<name>``): TTQ ``wp``, ``wn``; LSQ ``step``;
* ``clamp_scales_()``: the projection the trainer applies after every optimizer step
  (keeps learned scales positive; a no-op for methods without learned scales);
* ``history_stats(w)``: the six numbers the training history records per layer
  (:mod:`ttq_core.train.history`);
* ``grad_stats``: a caller-owned 9-number float64 buffer the backward adds gradient
  statistics into (layout of :mod:`ttq_core.quantize.function`), or None.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .family import QUANTIZERS, QuantizerSpec


class NotTernaryError(ConfigError, TypeError):
    """A ternary-only operation (``ternary_codes``, ``export_ternary``) on a layer whose
    quantizer is not ternary (``bwn``, ``int4``, ``int8``)."""


class WeightQuantizer(nn.Module):
    """Base class: maps a layer's latent weight to its quantized weight (see module doc)."""

    method: str = ""
    min_scale: float = 0.0

    def __init__(self):
        super().__init__()
        self.grad_stats: torch.Tensor | None = None  # set by the trainer to record gradients

    @property
    def spec(self) -> QuantizerSpec:
        """This method's registry entry (:data:`~ttq_core.quantize.family.QUANTIZERS`)."""
        return QUANTIZERS[self.method]

    def learned_parameters(self) -> list[nn.Parameter]:
        """The learned quantizer parameters (``spec.learned``), for optimizer groups."""
        return [getattr(self, name) for name in self.spec.learned]

    @torch.no_grad()
    def init_from_(self, w: torch.Tensor) -> None:
        """Start the learned parameters from the latent weights ``w`` (default: nothing)."""

    @torch.no_grad()
    def clamp_scales_(self) -> None:
        """Projection after an optimizer step (default: nothing to keep positive)."""

    @torch.no_grad()
    def history_stats(self, w: torch.Tensor) -> torch.Tensor:
        """float64 ``[frac_pos, frac_zero, frac_neg, wp, wn, delta]`` of latent ``w``:
        the fractions of quantized weights > 0, = 0, < 0 and the method's scale and
        zero threshold (each method documents what it puts in ``wp``, ``wn``, ``delta``)."""
        raise NotImplementedError

    def not_ternary(self, what: str) -> NotTernaryError:
        """The error for a ternary-only operation on this (non-ternary) quantizer."""
        return NotTernaryError(
            f"{what} needs a ternary quantizer (ttq or twn); this layer is quantized with "
            f"{self.method} ({self.spec.family}, {self.spec.description}): use "
            f"layer.effective_weight() for its weight values")


def sign_fractions(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fractions (0-dim tensors) of the entries of ``q`` that are > 0, == 0 and < 0."""
    n = q.numel()
    return (q > 0).sum() / n, (q == 0).sum() / n, (q < 0).sum() / n
