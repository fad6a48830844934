"""Threshold rules: how each ternary layer turns its latent weights into the threshold Δ.

A rule is a small object registered by name.  Two rules exist:

``threshold``  Δ = t · max|w|, with the factor ``t`` (TTQ's default, t = 0.05).  One ``t``
               for all layers, or one per layer (see :func:`ttq_core.quantize.ternarize`).
``sparsity``   Δ = the r-quantile of |w|: the ``k = round(r·n)``-th smallest |w| of the
               layer's ``n`` weights, so (ties aside) exactly ``k`` weights satisfy
               ``|w| <= Δ`` and become zero.  ``r = 0`` gives Δ = 0 (only exact zeros).

Both are recomputed from the current latent weights at every forward pass and carry no
gradient.  Users add a rule with :func:`register_rule`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import ConfigError

DeltaFn = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class ThresholdRule:
    """A named way to compute Δ from |w| and one per-layer number ``value``.

    ``delta(abs_w, value)`` gets the detached absolute latent weights and returns a 0-dim
    tensor on the same device.  ``check(value)`` validates ``value`` (ConfigError).
    """

    name: str
    meaning: str  # what `value` is, for messages and docs
    delta: DeltaFn
    low: float
    high: float
    high_inclusive: bool

    def check(self, value: float, where: str = "") -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.name} value{where} must be a number, got {value!r}") from None
        ok_high = v <= self.high if self.high_inclusive else v < self.high
        if not (self.low <= v and ok_high) or v != v:
            bracket = "]" if self.high_inclusive else ")"
            raise ConfigError(
                f"{self.meaning}{where} must be in [{self.low}, {self.high}{bracket}, got {value!r}")
        return v


_RULES: dict[str, ThresholdRule] = {}


def register_rule(rule: ThresholdRule) -> ThresholdRule:
    """Add ``rule`` to the registry (replacing one of the same name)."""
    _RULES[rule.name] = rule
    return rule


def get_rule(name: str) -> ThresholdRule:
    try:
        return _RULES[name]
    except KeyError:
        raise ConfigError(
            f"unknown threshold rule {name!r}; known rules: {', '.join(sorted(_RULES))}") from None


def rule_names() -> list[str]:
    return sorted(_RULES)


def _delta_max_scaled(abs_w: torch.Tensor, t: float) -> torch.Tensor:
    return abs_w.amax() * t


def _delta_sparsity(abs_w: torch.Tensor, r: float) -> torch.Tensor:
    flat = abs_w.reshape(-1)
    k = int(round(r * flat.numel()))
    if k <= 0:
        return torch.zeros((), dtype=abs_w.dtype, device=abs_w.device)
    return torch.kthvalue(flat, k).values


register_rule(ThresholdRule("threshold", "threshold factor t (Δ = t·max|w|)",
                            _delta_max_scaled, 0.0, 1.0, False))
register_rule(ThresholdRule("sparsity", "target sparsity r (fraction of zero weights)",
                            _delta_sparsity, 0.0, 1.0, False))
