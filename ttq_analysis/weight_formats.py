"""Each conv/linear layer's weight format — fp, binary, ternary, int4, int8 — and how it is stored.

=========  ===================================  ========================  =====================
format     weights                              arithmetic                storage (bits)
=========  ===================================  ========================  =====================
fp         any float values                     MACs                      activation width
                                                                          per parameter
binary     ±α_c, one scale per output channel   additions/subtractions +  1 per weight + 32 per
                                                one α_c multiplication    output channel + 32
                                                per output                per bias
ternary    {−Wn, 0, +Wp}, one pair per layer    additions + one Wp and/   2 per weight + 64 per
                                                or one Wn multiplication  layer (symmetric:
                                                                          32) + 32 per bias
                                                per output (symmetric,
                                                Wp = Wn = α: one α
                                                multiplication)
int4/int8  s_c·k, integer k, one step s_c per   MACs at weight ×          4 or 8 per weight + 32
           output channel                       activation precision      per output channel +
                                                                          32 per bias
=========  ===================================  ========================  =====================

(:data:`WEIGHT_FORMATS`; the operation counts are :mod:`ttq_analysis.ternary_ops`, the
energies :mod:`ttq_analysis.energy`.)

Scale multiplications of a ternary layer (:attr:`LayerFormat.scale_mults`): an output of a
layer with two scales is ``Wp·Σ(inputs under +) − Wn·Σ(inputs under −)``, one
multiplication per sign present (``"per_sign"``); a **symmetric** ternary layer, one scale
α for both signs, computes ``α·(Σ(inputs under +) − Σ(inputs under −))``, one
multiplication per computed output (``"per_output"``, the binary rule).  Symmetric are:
a toolkit ``twn`` layer (one α per layer, by construction), and a plain layer detected as
ternary whose two magnitudes are one value, ``|Wp − Wn| ≤ tolerance·max|w|`` (the
tolerance within which the ternary rule already merges values; e.g. an exported TWN layer
or a BitNet-style {−1, 0, +1}·scale layer).  A toolkit ``ttq`` layer keeps two
multiplications whatever its values: Wp and Wn are two trained parameters (equal only at
initialisation, ``--scale-init one``).  A plain layer with only one sign present costs the
same under either rule and is counted ``"per_sign"``.

Recognition (:func:`layer_format`):

* a toolkit layer (``TernaryLayerMixin``, any method) by its quantizer:
  ``quantizer.method`` (absent: ``"ttq"``) maps through :data:`METHOD_FORMATS`
  (ttq, twn → ternary; bwn → binary; int4, int8); the weights counted are
  ``effective_weight()``; a layer with ``quantize_enabled = False`` is fp;
* a plain ``nn.Conv2d``/``nn.Linear`` by its values, with a relative tolerance
  (``--ternary-tolerance``, default 1e-5): values closer than ``tolerance·max|w_c|`` are
  one value, where ``w_c`` is one output channel's weights (the ternary rule keeps its
  layer-wide ``tolerance·max|w|``).  In order:

  1. **binary**: no zero weight and, in every output channel, one magnitude α_c
     (``max|w_c| − min|w_c| ≤ tol``): the channel takes the values −α_c and/or +α_c.
     Two values of different magnitudes ({−a, +b}, a ≠ b) need two multiplications and
     are not binary (a layer-wide {−a, +b} is then ternary, below);
  2. **ternary**: today's rule (:mod:`ttq_analysis.ternary_detect`), at most three values
     {−a, 0, +b} in the whole layer;
  3. **int4**, then **int8**: every output channel has at most 16 (256) distinct values
     and they lie on a uniform grid ``k·s_c`` whose integers k fit 4 (8) bits in two's
     complement (or its mirror image, the sign of s_c being free: k in [−8, 7] or
     [−7, 8]; the toolkit's own int-n layers use [−Q, Q], Q = 2^(n−1) − 1);
  4. **fp** otherwise, with the reason (more than 256 values in a channel; or at most 256
     values that lie on no such grid, and the first channel where none fits).

  An all-zero channel fits every integer format.  A conv with ``padding_mode`` other than
  ``'zeros'`` is fp (only zero padding is countable).

The grid of one channel: with ``s0`` the smallest of its nonzero |values| and of the gaps
between its sorted distinct values, the true step divides ``s0`` (``s0 = j·s``), so
``s0/1, s0/2, …`` are tried until the integers fit (the first that fits is the coarsest
grid) or the span ``(max − min)/s`` exceeds what n bits hold; the step is refitted by
least squares (``s = Σ k·w / Σ k²``) and every weight must lie within the tolerance of
``k·s``.

``Analysis.meta["weight_formats"]`` (:func:`formats_meta`) holds the verdict on every
layer: ``format``, ``source`` (``"quantizer"`` or ``"values"``), ``method`` (the toolkit
quantizer's, else None), ``values`` (most distinct values in one output channel of a
plain layer, ``VALUES_CAP + 1`` meaning more; the whole layer's for a ternary verdict;
None for a toolkit layer) and ``how`` (one sentence), plus the network's ``method`` and
the ``formats`` present.  ``meta["ternary_detection"]`` keeps its content (the ternary
rule's verdict on every plain layer), except that a layer counted as binary reads
``ternary: false``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ttq_core.errors import ConfigError
from ttq_core.quantize import TernaryLayerMixin

from .ternary_detect import DEFAULT_TOLERANCE, Detection, detect_ternary, ternary_scales

__all__ = ["WeightFormat", "WEIGHT_FORMATS", "ADD_ONLY_FORMATS", "INT_FORMATS", "METHOD_FORMATS",
           "VALUES_CAP", "LayerFormat", "layer_format", "detect_formats", "formats_meta",
           "ternary_detection_meta", "int_grid", "format_of_layers", "network_method"]

VALUES_CAP = 256  # distinct values per channel counted up to this (more: "more than 256")


@dataclass(frozen=True)
class WeightFormat:
    """How one weight format is counted and stored.

    ``bits``: bits per weight (None: fp, stored at the activation width); ``add_only``:
    counted as additions plus scale multiplications (binary, ternary) rather than MACs;
    ``scale_mults``: ``"per_sign"`` (ternary: one Wp and one Wn multiplication per output,
    when used) or ``"per_output"`` (binary: one α_c per output), see
    :mod:`ttq_analysis.ternary_ops`; the format's default, which a symmetric ternary
    layer overrides (:attr:`LayerFormat.scale_mults`); ``per_channel_scale``: 32 bits
    stored per output channel (binary α_c, integer step s_c); ``label``: the precision
    column of Table 3."""

    name: str
    label: str
    bits: int | None
    add_only: bool
    scale_mults: str | None
    per_channel_scale: bool

    def weight_bits(self, n_weight: int, out_channels: int, n_bias: int,
                    one_scale: bool = False) -> float:
        """Storage of a layer's weights and biases in bits (fp: 32 per parameter, the
        FP32 figure; the energy scales it to the activation width).  Scales are 32 bits
        each: one per output channel (binary, int), else Wp and Wn (ternary), or one α
        for a symmetric ternary layer (``one_scale``: TWN, see SYMMETRIC_TERNARY_METHODS)."""
        if self.bits is None:
            return float(32 * (n_weight + n_bias))
        scales = 32 * out_channels if self.per_channel_scale else (32 if one_scale else 64)
        return float(self.bits * n_weight + scales + 32 * n_bias)


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    "fp": WeightFormat("fp", "FP", None, False, None, False),
    "binary": WeightFormat("binary", "binary (1 bit)", 1, True, "per_output", True),
    "ternary": WeightFormat("ternary", "ternary (2 bit)", 2, True, "per_sign", False),
    "int4": WeightFormat("int4", "int4", 4, False, None, True),
    "int8": WeightFormat("int8", "int8", 8, False, None, True),
}
"""Every weight format the analysis counts, by name (the layer column ``weight_format``)."""

ADD_ONLY_FORMATS = ("binary", "ternary")
INT_FORMATS = ("int4", "int8")

METHOD_FORMATS = {"ttq": "ternary", "twn": "ternary", "bwn": "binary", "int4": "int4",
                  "int8": "int8"}
"""A toolkit quantizer's ``method`` → the weight format it produces."""

SYMMETRIC_TERNARY_METHODS = ("twn",)
"""Toolkit ternary methods with one scale α for both signs: one multiplication per
computed output (``scale_mults="per_output"``), not one per sign."""

SYMMETRIC_HOW = "one scale for both signs: one multiplication per output"


@dataclass(frozen=True)
class LayerFormat:
    """The verdict on one layer (see the module doc).  ``codes``: int8 sign codes in
    {−1, 0, +1} of an add-only format (binary, ternary), else None; ``weight``: the
    weights as counted (a toolkit layer's quantized weights, a plain layer's own);
    ``wp``/``wn``: the ternary scales (NaN otherwise); ``ternary_detection``: the ternary
    rule's verdict on a plain layer (None for toolkit layers); ``scale_mults``: how the
    layer's scale multiplications are counted, ``"per_sign"`` or ``"per_output"``
    (:mod:`ttq_analysis.ternary_ops`; None: the format's, see the module doc for symmetric
    ternary layers)."""

    format: str
    source: str
    how: str
    values: int | None
    method: str | None
    codes: torch.Tensor | None
    weight: torch.Tensor
    wp: float = math.nan
    wn: float = math.nan
    ternary_detection: Detection | None = None
    scale_mults: str | None = None

    def __post_init__(self):
        if self.scale_mults is None:  # the format's rule (binary per output, ternary per sign)
            object.__setattr__(self, "scale_mults", self.spec.scale_mults)

    @property
    def spec(self) -> WeightFormat:
        return WEIGHT_FORMATS[self.format]

    def as_meta(self) -> dict:
        return {"format": self.format, "source": self.source, "method": self.method,
                "values": self.values, "how": self.how}


def _values_text(n: int) -> str:
    return f"more than {VALUES_CAP}" if n > VALUES_CAP else str(n)


# ----------------------------------------------------------------------------- toolkit layers

@torch.no_grad()
def _toolkit_format(layer: TernaryLayerMixin) -> LayerFormat:
    method = getattr(layer.quantizer, "method", "ttq")
    if not layer.quantize_enabled:
        return LayerFormat("fp", "quantizer", f"toolkit {method} layer with quantization "
                           f"switched off: full precision", None, method, None,
                           layer.weight.detach().float())
    fmt = METHOD_FORMATS.get(method)
    if fmt is None:
        raise ConfigError(f"quantizer method {method!r} is not known to the analysis; it "
                          f"counts {', '.join(METHOD_FORMATS)}")
    w = layer.effective_weight().detach().float()
    how = f"toolkit layer, quantizer method {method}: {WEIGHT_FORMATS[fmt].label} weights"
    if fmt == "ternary":
        codes = layer.ternary_codes()
        if method == "ttq":
            wp, wn = ternary_scales(layer, codes)  # the trained Wp, Wn
        else:  # one α per layer: the values the weights take
            pos, neg = w[codes == 1], w[codes == -1]
            wp = float(pos.mean()) if pos.numel() else math.nan
            wn = float(-neg.mean()) if neg.numel() else math.nan
        symmetric = method in SYMMETRIC_TERNARY_METHODS
        return LayerFormat(fmt, "quantizer", how + (f"; {SYMMETRIC_HOW}" if symmetric else ""),
                           None, method, codes, w, wp, wn,
                           scale_mults="per_output" if symmetric else "per_sign")
    codes = torch.sign(w).to(torch.int8) if fmt == "binary" else None
    return LayerFormat(fmt, "quantizer", how, None, method, codes, w)


# ----------------------------------------------------------------------------- plain layers

def _distinct_per_channel(sorted_rows: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
    """Distinct values of each row of ``sorted_rows`` (sorted), neighbours closer than the
    row's ``tol`` merged."""
    if sorted_rows.shape[1] <= 1:
        return torch.full((sorted_rows.shape[0],), sorted_rows.shape[1], dtype=torch.long)
    return ((sorted_rows[:, 1:] - sorted_rows[:, :-1]) > tol).sum(1) + 1


def _fits(kmin: int, kmax: int, bits: int) -> bool:
    """Whether integers in [kmin, kmax] fit ``bits``-bit two's complement, as they are or
    mirrored (the sign of the step is free)."""
    h = 1 << (bits - 1)
    return (kmin >= -h and kmax <= h - 1) or (kmin >= -(h - 1) and kmax <= h)


def int_grid(w: np.ndarray, tol: float, bits: int) -> tuple[float, int, int] | None:
    """``(s, kmin, kmax)`` when every value of one channel ``w`` (1-D float64) lies within
    ``tol`` of ``k·s`` for integers k that fit ``bits`` bits (see the module doc), else
    None.  An all-zero channel gives ``(0.0, 0, 0)``."""
    nz = np.abs(w) > tol
    if not nz.any():
        return 0.0, 0, 0
    u = np.unique(w)
    gaps = np.diff(u)
    gaps = gaps[gaps > tol]
    s0 = float(min(np.abs(w[nz]).min(), gaps.min() if gaps.size else np.inf))
    span = float(w.max() - w.min())
    levels = (1 << bits) - 1
    for m in range(1, (1 << bits) + 1):
        s = s0 / m
        if span / s > levels + 0.5:  # finer grids only spread the integers wider
            return None
        k = np.rint(w / s)
        denom = float((k * k).sum())
        s = float((k * w).sum() / denom)  # least-squares step for these integers
        k = np.rint(w / s)
        if np.abs(w - k * s).max() <= tol and _fits(int(k.min()), int(k.max()), bits):
            return s, int(k.min()), int(k.max())
    return None


@torch.no_grad()
def _plain_format(layer: nn.Module, tolerance: float) -> LayerFormat:
    det = detect_ternary(layer, tolerance)  # today's layer-wide ternary rule, unchanged
    w = layer.weight.detach().float()
    rows = w.reshape(w.shape[0], -1)

    def fp(how: str, values: int | None) -> LayerFormat:
        return LayerFormat("fp", "values", how, values, None, None, w, ternary_detection=det)

    peak = float(rows.abs().max()) if rows.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return fp(det.how, det.values)
    if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
        return fp(det.how if not det.ternary else
                  f"padding_mode={layer.padding_mode!r}: counted as full precision (only "
                  f"zero padding is countable)", det.values)
    tol = tolerance * rows.abs().amax(1, keepdim=True)  # per output channel
    mag = rows.abs()
    if bool((mag > tol).all()) and bool((mag.amax(1, keepdim=True) - mag.amin(1, keepdim=True)
                                         <= tol).all()):
        return LayerFormat("binary", "values",
                           f"binary: every output channel's weights are ±α_c (one magnitude "
                           f"per channel, no zero) within {tolerance:g}·max|w_c|",
                           2 if bool(((rows > 0).any(1) & (rows < 0).any(1)).any()) else 1,
                           None, torch.sign(w).to(torch.int8), w, ternary_detection=det)
    if det.ternary:
        # symmetric (|Wp − Wn| within the ternary rule's tolerance): one α multiplication
        symmetric = abs(det.wp - det.wn) <= tolerance * peak  # False when a sign is absent
        return LayerFormat("ternary", "values",
                           det.how + (f"; |Wp − Wn| ≤ {tolerance:g}·max|w|, {SYMMETRIC_HOW}"
                                      if symmetric else ""),
                           det.values, None, det.codes, w, det.wp, det.wn,
                           ternary_detection=det,
                           scale_mults="per_output" if symmetric else "per_sign")
    # distinct values per channel: a float layer shows hundreds in its first channel
    first = _distinct_per_channel(rows[:1].sort(1).values, tol[:1])
    if int(first[0]) > VALUES_CAP:
        return fp(f"full precision: output channel 0 has {_values_text(int(first[0]))} "
                  f"distinct weight values", VALUES_CAP + 1)
    counts = _distinct_per_channel(rows.sort(1).values, tol)
    most = int(counts.max())
    worst = int(counts.argmax())
    if most > VALUES_CAP:
        return fp(f"full precision: output channel {worst} has {_values_text(most)} distinct "
                  f"weight values", VALUES_CAP + 1)
    data, tols = rows.double().numpy(), tol.double().flatten().numpy()
    for fmt in INT_FORMATS:
        bits = WEIGHT_FORMATS[fmt].bits
        if most > (1 << bits):
            continue
        grids = []
        for c in range(data.shape[0]):
            g = int_grid(data[c], float(tols[c]), bits)
            if g is None:
                break
            grids.append(g)
        else:
            kmin = min(g[1] for g in grids)
            kmax = max(g[2] for g in grids)
            return LayerFormat(fmt, "values",
                               f"{fmt}: every output channel's weights lie on a grid k·s_c, "
                               f"integer k in [{kmin}, {kmax}] (at most {most} distinct "
                               f"values per channel) within {tolerance:g}·max|w_c|",
                               most, None, None, w, ternary_detection=det)
        failed = c
    return fp(f"not an integer format: output channel {failed} has "
              f"{int(counts[failed])} distinct weight values (at most {most} per channel) "
              f"that lie on no uniform grid k·s_c with k fitting 8 bits (within "
              f"{tolerance:g}·max|w_c|); counted as full precision", most)


def layer_format(layer: nn.Module, tolerance: float = DEFAULT_TOLERANCE) -> LayerFormat:
    """The weight format of one conv/linear ``layer`` (see the module doc)."""
    if isinstance(layer, TernaryLayerMixin):
        return _toolkit_format(layer)
    return _plain_format(layer, tolerance)


def detect_formats(layers: dict[str, nn.Module],
                   tolerance: float = DEFAULT_TOLERANCE) -> dict[str, LayerFormat]:
    """:func:`layer_format` of every layer of ``layers`` ({name: module})."""
    return {n: layer_format(m, tolerance) for n, m in layers.items()}


def network_method(verdicts: dict[str, LayerFormat]) -> str | None:
    """The toolkit quantizer method of the network's quantized layers (``"mixed"`` when
    they differ), None when no toolkit layer is quantized."""
    methods = sorted({v.method for v in verdicts.values()
                      if v.source == "quantizer" and v.format != "fp"})
    return None if not methods else methods[0] if len(methods) == 1 else "mixed"


def format_of_layers(formats) -> str | None:
    """The quantized format of a network from its layers' formats: the one non-fp format,
    ``"mixed"`` for several, None for an FP network."""
    found = sorted({str(f) for f in formats} - {"fp"},
                   key=lambda f: list(WEIGHT_FORMATS).index(f) if f in WEIGHT_FORMATS else 99)
    return None if not found else found[0] if len(found) == 1 else "mixed"


FORMATS_RULE = ("toolkit layers: quantizer.method (ttq, twn -> ternary; bwn -> binary; int4; "
                "int8); plain layers, by their values: binary (one magnitude per output "
                "channel, no zero), else ternary (at most three values {-a, 0, +b} per layer), "
                "else int4/int8 (at most 16/256 distinct values per output channel on a "
                "uniform grid k*s_c, k fitting 4/8 bits), else fp; values closer than "
                "tolerance*max|w_c| (ternary: max|w|) merged")


def formats_meta(verdicts: dict[str, LayerFormat], tolerance: float) -> dict:
    """JSON-able record of every layer's verdict, for ``Analysis.meta["weight_formats"]``."""
    present = [f for f in WEIGHT_FORMATS if f != "fp"
               and any(v.format == f for v in verdicts.values())]
    return {"tolerance": tolerance, "rule": FORMATS_RULE, "method": network_method(verdicts),
            "formats": present, "layers": {n: v.as_meta() for n, v in verdicts.items()}}


def ternary_detection_meta(verdicts: dict[str, LayerFormat], tolerance: float) -> dict:
    """``meta["ternary_detection"]`` as before the other formats: the ternary rule's verdict
    on every plain layer; a layer the rule calls ternary but counted as binary (one
    magnitude per channel, no zero) reads ``ternary: false`` with the reason."""
    from .ternary_detect import detection_meta
    plain = {n: v for n, v in verdicts.items() if v.ternary_detection is not None}
    out = detection_meta({n: v.ternary_detection for n, v in plain.items()}, tolerance)
    for n, v in plain.items():
        if v.ternary_detection.ternary and v.format != "ternary":
            out["layers"][n] = {"ternary": False, "values": v.ternary_detection.values,
                                "how": f"counted as {v.format}, not ternary: {v.how}"}
    return out
