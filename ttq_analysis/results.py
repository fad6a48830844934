"""Typed network-level results of :func:`ttq_analysis.analyze`: what crosses from the
analysis layer to the reports.

:class:`NetworkResult` (``Analysis.network``) groups the totals by what they are:

=================  ==========================================================================
``counts``         :class:`OpCounts`: dense MACs, ternary (and binary) additions/
                   multiplications (dense activations) and the measured ("effective") ones,
                   per inference of one input
``sizes``          :class:`Sizes`: parameters and weight storage in bits
``sparsity``       :class:`Sparsity`: fractions of zero weights and of zero activations
``energy``         :class:`EnergyTotals`: the four scenarios of :mod:`ttq_analysis.energy`,
                   each a :class:`ScenarioEnergy` (compute, memory, total in µJ per inference)
``accuracy``       :class:`Accuracy`: top-1 as fractions, and where the reported one came from
=================  ==========================================================================

"TTQ" in the field and scenario names (``ttq_measured``, ``ternary``) is the quantized
network of an analysis: ``weight_format`` says which format it is (ternary, binary, int4,
int8 or mixed; :mod:`ttq_analysis.weight_formats`), ``quantized`` whether it has any
non-FP layer.

Every saving of the toolkit (FP32 energy / TTQ energy) is computed by :func:`energy_saving`
here, and nowhere else; the reports only format it.  ``None`` means "not applicable or not
measured" throughout (JSON ``null``).

On disk (``analysis.json``) the network is the flat dict of earlier versions (keys such as
``ttq_measured_total_uJ``); :meth:`NetworkResult.to_flat_dict` writes exactly those keys in
the same order and :meth:`NetworkResult.from_flat_dict` reads files written before this
module existed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

PJ_PER_UJ = 1e6
"""Picojoules per microjoule: per-layer energies are in pJ, network totals in µJ."""

PRECISIONS = ("fp32", "ttq")          # the FP32 twin / the ternary network
ACTIVATIONS = ("dense", "measured")   # every MAC computed / zero inputs skipped
PARTS = ("compute", "memory", "total")      # the flat-dict keys of format version 1
EXTRA_PARTS = ("act_memory",)                # appended after them


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def energy_saving(fp_total_uJ: float | None, ttq_total_uJ: float | None) -> float | None:
    """FP32 energy / TTQ energy (× less energy), the toolkit's one definition of a saving.

    Both totals must be for the same activations (both dense or both measured) and per
    inference of one input.  ``None`` when either is missing (None/NaN) or either is not
    positive."""
    if _missing(fp_total_uJ) or _missing(ttq_total_uJ) or fp_total_uJ <= 0 or ttq_total_uJ <= 0:
        return None
    return fp_total_uJ / ttq_total_uJ


@dataclass(frozen=True)
class ScenarioEnergy:
    """Energy of one scenario in µJ per inference of one input (None: not computable,
    e.g. measured energy without data or TTQ energy of an FP network)."""

    compute_uJ: float | None = None
    memory_uJ: float | None = None
    total_uJ: float | None = None
    act_memory_uJ: float | None = None
    """Activation reads and writes (0 when not counted, the default; None in files
    written before it existed).  total = compute + memory (weights) + act_memory."""


@dataclass(frozen=True)
class EnergyTotals:
    """The four scenarios: FP32 twin or ternary network, dense or measured activations."""

    fp32_dense: ScenarioEnergy = ScenarioEnergy()
    fp32_measured: ScenarioEnergy = ScenarioEnergy()
    ttq_dense: ScenarioEnergy = ScenarioEnergy()
    ttq_measured: ScenarioEnergy = ScenarioEnergy()

    def scenario(self, precision: str, activations: str) -> ScenarioEnergy:
        """``precision`` "fp32" or "ttq", ``activations`` "dense" or "measured"."""
        if precision not in PRECISIONS or activations not in ACTIVATIONS:
            raise ValueError(f"no scenario {precision}_{activations}")
        return getattr(self, f"{precision}_{activations}")

    @classmethod
    def from_pJ(cls, totals_pJ: Mapping[str, float | None]) -> "EnergyTotals":
        """From :func:`ttq_analysis.energy.scenario_totals` (``{scenario}_{part}_pJ`` sums over
        layers, pJ); NaN (a layer without a value) becomes None."""
        def uJ(key):
            v = totals_pJ.get(key)
            return None if _missing(v) else v / PJ_PER_UJ
        return cls(**{f"{p}_{a}": ScenarioEnergy(**{f"{part}_uJ": uJ(f"{p}_{a}_{part}_pJ")
                                                     for part in PARTS + EXTRA_PARTS})
                      for p in PRECISIONS for a in ACTIVATIONS})


@dataclass(frozen=True)
class OpCounts:
    """Operations per inference of one input.  ``macs``: dense MACs of all conv/linear layers
    (fvcore); ``fp_layer_macs``: those of the layers kept FP; ``ternary_adds``/``_mults``:
    additions and scale multiplications of the add-only layers (ternary and binary) with
    every input nonzero (None without such a layer); ``effective_*``: measured on real
    inputs (nonzero weight × nonzero input; ``effective_macs``: MACs whose input is
    nonzero, every layer)."""

    macs: float
    fp_layer_macs: float
    ternary_adds: float | None = None
    ternary_mults: float | None = None
    effective_adds: float | None = None
    effective_mults: float | None = None
    effective_macs: float | None = None


@dataclass(frozen=True)
class Sizes:
    """``params``: every parameter but the quantizers' (Wp/Wn, integer steps; batch norm
    included); ``conv_linear_params``: weights and biases of conv/linear layers;
    ``weight_bits``: their storage in this network (per weight format,
    :meth:`ttq_analysis.weight_formats.WeightFormat.weight_bits`: 2 bits per ternary weight
    + 64 per layer for Wp/Wn (32: a symmetric layer's one α), 1 bit per binary and n per int-n weight + 32 per output
    channel, 32 per bias and FP parameter);
    ``fp_weight_bits``: 32 per parameter; ``compression`` = fp_weight_bits / weight_bits."""

    params: int
    conv_linear_params: int
    weight_bits: float
    fp_weight_bits: float

    @property
    def compression(self) -> float:
        return self.fp_weight_bits / self.weight_bits


@dataclass(frozen=True)
class Sparsity:
    """Fractions in [0, 1]. ``weight_sparsity``: zero weights over all quantized layers
    (ternary, binary, int; None for an FP network); ``act_sparsity_mean``: zero inputs per layer, averaged over
    layers; ``act_sparsity_macs_weighted``: the same weighted by each layer's dense MACs
    (the fraction of MACs with a zero input); None without data."""

    weight_sparsity: float | None = None
    act_sparsity_mean: float | None = None
    act_sparsity_macs_weighted: float | None = None


@dataclass(frozen=True)
class Accuracy:
    """Top-1 accuracies as fractions.  ``measured_acc``: on the labelled images analysed
    (None without labels); ``test_acc``: the one a report quotes (by default the
    checkpoint's recorded accuracy), with ``test_acc_source`` saying where it came from."""

    test_acc: float | None = None
    measured_acc: float | None = None
    test_acc_source: str | None = None


@dataclass(frozen=True)
class EnergyComparison:
    """FP32 against TTQ energy for one kind of ``activations`` ("dense" or "measured"), µJ
    per inference of one input, and ``saving`` = fp32_total_uJ / ttq_total_uJ."""

    activations: str
    fp32_total_uJ: float | None
    ttq_total_uJ: float | None
    saving: float | None


def savings_over(fp: "NetworkResult", ternary: "NetworkResult",
                 activations: str) -> EnergyComparison:
    """The energy saving of ``ternary`` over ``fp``, like with like (both dense or both
    measured): ``fp``'s FP32 scenario against ``ternary``'s TTQ scenario.  ``fp`` is either
    the real FP model (its own activations) or ``ternary`` itself (its FP32 twin)."""
    fp_total = fp.energy.scenario("fp32", activations).total_uJ
    tq_total = ternary.energy.scenario("ttq", activations).total_uJ
    return EnergyComparison(activations, fp_total, tq_total, energy_saving(fp_total, tq_total))


@dataclass(frozen=True)
class NetworkResult:
    """Network-level totals of one analysis (see the module doc).  ``ternary``/
    ``ternary_layers``: whether it has / how many ternary layers; ``quantized_layers``:
    layers in any non-FP weight format; ``weight_format``: the quantized network's format
    (``"ternary"``, ``"binary"``, ``"int4"``, ``"int8"``, ``"mixed"``; None for an FP
    network)."""

    arch: str | None
    ternary: bool
    layers: int
    ternary_layers: int
    images: int
    counts: OpCounts
    sizes: Sizes
    sparsity: Sparsity
    energy: EnergyTotals
    accuracy: Accuracy
    quantized_layers: int | None = None
    weight_format: str | None = None

    def __post_init__(self):
        if self.quantized_layers is None:  # built the old way: the ternary layers
            object.__setattr__(self, "quantized_layers", self.ternary_layers)
            if self.weight_format is None and self.ternary:
                object.__setattr__(self, "weight_format", "ternary")

    @property
    def quantized(self) -> bool:
        """Whether any layer is in a non-FP weight format (the ``ttq_*`` scenarios apply)."""
        return self.ternary or bool(self.quantized_layers)

    def saving(self, activations: str) -> float | None:
        """This network's FP32 twin (same layers, same activations) over its TTQ (quantized)
        energy, ``activations`` "dense" or "measured"; None for an FP network."""
        return savings_over(self, self, activations).saving

    @property
    def own_precision(self) -> str:
        """The scenario prefix of the network as it is: "ttq" if quantized, else "fp32"."""
        return "ttq" if self.quantized else "fp32"

    def with_accuracy(self, test_acc: float | None, source: str | None) -> "NetworkResult":
        """A copy whose quoted accuracy is ``test_acc`` (fraction), from ``source``."""
        return dataclasses.replace(self, accuracy=dataclasses.replace(
            self.accuracy, test_acc=test_acc, test_acc_source=source))

    # ----- the flat JSON form (analysis.json, format_version 1)
    def to_flat_dict(self) -> dict[str, Any]:
        """The flat dict ``analysis.json`` has always held, keys and order unchanged."""
        c, s, sp, a = self.counts, self.sizes, self.sparsity, self.accuracy
        d: dict[str, Any] = {
            "arch": self.arch, "ternary": self.ternary, "layers": self.layers,
            "ternary_layers": self.ternary_layers, "params": s.params,
            "conv_linear_params": s.conv_linear_params, "weight_bits": s.weight_bits,
            "fp_weight_bits": s.fp_weight_bits, "macs": c.macs, "fp_layer_macs": c.fp_layer_macs,
            "ternary_adds": c.ternary_adds, "ternary_mults": c.ternary_mults,
            "effective_adds": c.effective_adds, "effective_mults": c.effective_mults,
            "effective_macs": c.effective_macs, "images": self.images,
            "compression": s.compression, "weight_sparsity": sp.weight_sparsity,
            "act_sparsity_mean": sp.act_sparsity_mean,
            "act_sparsity_macs_weighted": sp.act_sparsity_macs_weighted}
        for p in PRECISIONS:
            for act in ACTIVATIONS:
                e = self.energy.scenario(p, act)
                for part in PARTS:
                    d[f"{p}_{act}_{part}_uJ"] = getattr(e, f"{part}_uJ")
        d["saving_dense"] = self.saving("dense")
        d["saving_measured"] = self.saving("measured")
        d["test_acc"] = a.test_acc
        d["measured_acc"] = a.measured_acc
        if a.test_acc_source is not None:
            d["test_acc_source"] = a.test_acc_source
        # keys added later go last, so the older keys keep their order; a file written
        # before them (all None) is written back without them
        extra = {f"{p}_{act}_{part}_uJ": getattr(self.energy.scenario(p, act), f"{part}_uJ")
                 for p in PRECISIONS for act in ACTIVATIONS for part in EXTRA_PARTS}
        if any(v is not None for v in extra.values()):
            d.update(extra)
        # likewise the weight format: written only where it is not implied by "ternary"
        # (from_flat_dict infers the ternary layers, ternary, for files without it)
        if (self.quantized_layers != self.ternary_layers
                or self.weight_format != ("ternary" if self.ternary else None)):
            d["quantized_layers"] = self.quantized_layers
            d["weight_format"] = self.weight_format
        return d

    @classmethod
    def from_flat_dict(cls, d: Mapping[str, Any]) -> "NetworkResult":
        """Read the flat dict of ``analysis.json`` (any toolkit version); derived values
        (compression, savings) are recomputed, not trusted."""
        def f(key):
            v = d.get(key)
            return None if v is None else float(v)
        energy = EnergyTotals(**{
            f"{p}_{act}": ScenarioEnergy(**{f"{part}_uJ": f(f"{p}_{act}_{part}_uJ")
                                            for part in PARTS + EXTRA_PARTS})
            for p in PRECISIONS for act in ACTIVATIONS})
        return cls(
            arch=d.get("arch"), ternary=bool(d.get("ternary")), layers=int(d.get("layers") or 0),
            ternary_layers=int(d.get("ternary_layers") or 0), images=int(d.get("images") or 0),
            counts=OpCounts(f("macs"), f("fp_layer_macs"), f("ternary_adds"), f("ternary_mults"),
                            f("effective_adds"), f("effective_mults"), f("effective_macs")),
            sizes=Sizes(int(d.get("params") or 0), int(d.get("conv_linear_params") or 0),
                        f("weight_bits"), f("fp_weight_bits")),
            sparsity=Sparsity(f("weight_sparsity"), f("act_sparsity_mean"),
                              f("act_sparsity_macs_weighted")),
            energy=energy,
            accuracy=Accuracy(f("test_acc"), f("measured_acc"), d.get("test_acc_source")),
            # files before the other weight formats: the ternary layers, ternary
            quantized_layers=(int(d["quantized_layers"]) if d.get("quantized_layers") is not None
                              else None),
            weight_format=d.get("weight_format"))


__all__ = ["PJ_PER_UJ", "PRECISIONS", "ACTIVATIONS", "energy_saving", "EnergyComparison",
           "savings_over", "ScenarioEnergy", "EnergyTotals", "OpCounts", "Sizes",
           "Sparsity", "Accuracy", "NetworkResult"]
