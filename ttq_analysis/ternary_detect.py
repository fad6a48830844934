"""Recognise ternary weights in plain ``nn.Conv2d``/``nn.Linear`` layers.

Networks ternarized elsewhere (other TTQ code exporting ``w_t`` ∈ {−Wn, 0, +Wp}, BitNet
b1.58-style {−1, 0, +1}·scale) arrive as ordinary float layers.  A layer counts as ternary
when its weight takes **at most three values of the form {−a, 0, +b}** (a, b > 0, each
optional, at least one nonzero weight), up to a tolerance:

* ``tol = tolerance · max|w|`` (relative, default :data:`DEFAULT_TOLERANCE` = 1e-5, room
  for float noise of an export, far below any real quantization step);
* a weight with ``|w| ≤ tol`` is zero; the positive weights must all lie within ``tol`` of
  each other (one value +b), and so must the negative ones (one value −a).

Such a layer is then counted as a ternary one: codes in {−1, 0, +1} (the sign pattern
above), ternary additions and multiplications, 2-bit weight storage, ``wp = b`` and
``wn = a`` (the mean of each group, which equals it within ``tol``).  Anything else, e.g.
per-channel scales (several positive values) or a fourth value, is not ternary; the
number of distinct values found (merging values closer than ``tol``, capped at
:data:`VALUES_SHOWN` + 1) says why.  Toolkit ternary layers (``TernaryLayerMixin``) are
ternary by construction and not inspected here.  This rule is the ternary step of
:mod:`ttq_analysis.weight_formats`, which also recognises binary, int4 and int8 layers
(a layer-wide {−a, +a} without zeros is counted as binary there).  Only ``padding_mode='zeros'`` convs are
counted as ternary (the operation counts skip zero padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ttq_core.errors import ConfigError
from ttq_core.quantize import TernaryLayerMixin

DEFAULT_TOLERANCE = 1e-5
VALUES_SHOWN = 16  # distinct values are counted up to this (more: "more than 16")
_PROBE = 65_536  # weights looked at first when counting values


@dataclass(frozen=True)
class Detection:
    """The verdict on one layer: ``codes`` (int8 in {−1, 0, +1}, or None when not ternary),
    ``values`` (distinct weight values found, ``VALUES_SHOWN + 1`` meaning more), ``wp``/
    ``wn`` (the positive value b and the magnitude a of the negative one; NaN if absent)
    and ``how`` (one sentence for the report)."""

    codes: torch.Tensor | None
    values: int
    wp: float
    wn: float
    how: str

    @property
    def ternary(self) -> bool:
        return self.codes is not None

    def as_meta(self) -> dict:
        return {"ternary": self.ternary, "values": self.values, "how": self.how}


def check_tolerance(tolerance: float) -> float:
    """``tolerance`` as a float in [0, 0.5), else one ConfigError line."""
    try:
        t = float(tolerance)
    except (TypeError, ValueError):
        raise ConfigError(f"--ternary-tolerance must be a number, got {tolerance!r}") from None
    if not (0.0 <= t < 0.5) or math.isnan(t):
        raise ConfigError(f"--ternary-tolerance must be in [0, 0.5) (a fraction of the "
                          f"layer's max|w|), got {tolerance}")
    return t


def _count_merged(w: torch.Tensor, tol: float) -> int:
    uniq = torch.unique(w)
    if uniq.numel() <= 1:
        return int(uniq.numel())
    return int(((uniq[1:] - uniq[:-1]) > tol).sum()) + 1


def _distinct_values(w: torch.Tensor, tol: float) -> int:
    """Distinct values of ``w`` merging neighbours closer than ``tol``, capped at
    ``VALUES_SHOWN + 1`` (a float layer is recognised from its first 65,536 weights
    without sorting all of them)."""
    if w.numel() > _PROBE and _count_merged(w[:_PROBE], tol) > VALUES_SHOWN:
        return VALUES_SHOWN + 1
    return min(_count_merged(w, tol), VALUES_SHOWN + 1)


def _values_text(n: int) -> str:
    return f"more than {VALUES_SHOWN}" if n > VALUES_SHOWN else str(n)


@torch.no_grad()
def detect_ternary(layer: nn.Module, tolerance: float = DEFAULT_TOLERANCE) -> Detection:
    """Whether the weight of a plain conv/linear ``layer`` is ternary (see module doc)."""
    w = layer.weight.detach().float().flatten()
    peak = float(w.abs().max()) if w.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return Detection(None, int(w.numel() > 0), math.nan, math.nan,
                         "not ternary: every weight is zero" if peak == 0.0 else
                         "not ternary: non-finite weights")
    tol = tolerance * peak
    zero = w.abs() <= tol
    pos, neg = w[(w > tol)], w[(w < -tol)]
    spread_ok = all(g.numel() == 0 or float(g.max() - g.min()) <= tol for g in (pos, neg))
    if not spread_ok:  # only now count values (a sort), to say how far from ternary it is
        values = _distinct_values(w, tol)
        return Detection(None, values, math.nan, math.nan,
                         f"not ternary: {_values_text(values)} distinct weight values "
                         f"(tolerance {tolerance:g}·max|w|)")
    values = sum(1 for g in (pos, neg) if g.numel()) + int(bool(zero.any()))
    if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
        return Detection(None, values, math.nan, math.nan,
                         f"ternary values but padding_mode={layer.padding_mode!r}: counted "
                         f"as full precision (only zero padding is countable)")
    codes = torch.zeros_like(w, dtype=torch.int8)
    codes[w > tol] = 1
    codes[w < -tol] = -1
    wp = float(pos.mean()) if pos.numel() else math.nan
    wn = float(-neg.mean()) if neg.numel() else math.nan
    shown = ", ".join(f"{v:+.4g}" for v in ([-wn] if neg.numel() else []) +
                      ([0.0] if bool(zero.any()) else []) + ([wp] if pos.numel() else []))
    return Detection(codes.view_as(layer.weight), values, wp, wn,
                     f"ternary: weights take {values} value(s) {{{shown}}} within "
                     f"{tolerance:g}·max|w|")


def detect_all(layers: dict[str, nn.Module],
               tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Detection]:
    """:func:`detect_ternary` for every plain (not toolkit-ternary) layer of ``layers``."""
    return {n: detect_ternary(m, tolerance) for n, m in layers.items()
            if not isinstance(m, TernaryLayerMixin)}


def ternary_scales(layer: nn.Module, codes: torch.Tensor) -> tuple[float, float]:
    """(Wp, Wn) of a layer counted as ternary: its quantizer's for a toolkit layer, else the
    mean positive weight and the mean magnitude of the negative ones (NaN if none)."""
    if isinstance(layer, TernaryLayerMixin):
        return layer.quantizer.wp.item(), layer.quantizer.wn.item()
    w = layer.weight.detach().float()
    pos, neg = w[codes == 1], w[codes == -1]
    return (float(pos.mean()) if pos.numel() else math.nan,
            float(-neg.mean()) if neg.numel() else math.nan)


def detection_meta(detections: dict[str, Detection], tolerance: float) -> dict:
    """JSON-able summary for ``Analysis.meta["ternary_detection"]``."""
    return {"tolerance": tolerance, "rule": "at most three weight values {-a, 0, +b} per "
            "layer, values closer than tolerance·max|w| merged",
            "layers": {n: d.as_meta() for n, d in detections.items()}}


__all__ = ["DEFAULT_TOLERANCE", "Detection", "check_tolerance", "detect_ternary", "detect_all",
           "ternary_scales", "detection_meta"]
