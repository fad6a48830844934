"""The method axis of a sweep across hardware scenarios: which methods stay on the front.

A sweep with ``method=NAME`` settings (``ttq-sweep --methods fp ttq twn bwn int4 int8``)
trains every method with the same budget.  Which of them is "worth it" depends on the
hardware one assumes, so this module re-costs every method's analysis (its per-layer
counts, measured once) under every scenario of the matrix of
:mod:`ttq_analysis.scenario_matrix` — activation precision (fp32, fp16, int8) × where
weights are read from (SRAM, DRAM) × activation memory (none, SRAM, DRAM) × dense or
measured (zero-skipping) activations, 36 scenarios for the sweep's cost model — and says,
per scenario, each method's energy (µJ per inference of one image), the cheapest method and
the accuracy–energy Pareto front.

Replicates (the same method under several seeds) are one point: mean best test accuracy
and mean energy.  A method whose network has no quantized layer (``fp``) is costed as
the FP network (the ``fp32_*`` energies of its own analysis); every other method as the
quantized network (the ``ttq_*`` energies, which cover every quantized layer whatever its
weight format).  Nothing is re-measured.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from . import tables as T

__all__ = ["MethodPoint", "method_points", "ranking_table", "ranking_findings"]


@dataclass
class MethodPoint:
    """One method of the sweep: its ``label`` (the replicate group's label without the
    seed), the entries of its replicates and their mean best test accuracy (fraction)."""

    label: str
    entries: list
    accuracy: float


def _best_acc(entry) -> float:
    accs = [h.get("test_acc") for h in entry.history if h.get("test_acc") is not None]
    return float(max(accs)) if accs else math.nan


def method_points(entries: Sequence) -> list[MethodPoint]:
    """The sweep's ``method=`` settings grouped into replicate groups (first-seen order).
    Settings of other kinds are left out."""
    groups: dict[str, list] = {}
    for e in entries:
        method = (e.extra or {}).get("method")
        if method:
            groups.setdefault(method, []).append(e)
    return [MethodPoint(m, es, float(np.nanmean([_best_acc(e) for e in es])))
            for m, es in groups.items()]


def _energy_uJ(entry, energy_model, precision: str, weight_memory: str, act_memory: str,
               mode: str) -> float:
    from ttq_analysis.scenario_matrix import network_energy_uJ
    try:
        totals = network_energy_uJ(entry.analysis.layers, energy_model, memory=weight_memory,
                                   precision=precision, act_memory=act_memory)
    except ValueError:  # an analysis without the counts this scenario needs
        return math.nan
    quantized = totals.get(f"ttq_{mode}_total_uJ", math.nan)
    return quantized if math.isfinite(quantized) else totals.get(f"fp32_{mode}_total_uJ", math.nan)


def ranking_table(points: Sequence[MethodPoint], energy_model) -> T.Table:
    """One row per hardware scenario: the factors, each method's energy (µJ, mean over its
    replicates), the cheapest method and the accuracy–energy front (methods no other beats
    on both mean accuracy and energy, in order of energy)."""
    from ttq_analysis.energy import ACT_MEMORY_LEVELS, ACTIVATION_PRECISIONS, REQUIRED_MEMORY
    from ttq_analysis.scenario_matrix import ACT_MODES

    from .comparison import pareto_front
    rows = []
    for act, wmem, amem, mode in itertools.product(ACTIVATION_PRECISIONS, REQUIRED_MEMORY,
                                                   ACT_MEMORY_LEVELS, ACT_MODES):
        row = {"activations": act, "weight_memory": wmem, "act_memory": amem, "act_mode": mode}
        energies = []
        for p in points:
            e = float(np.nanmean([_energy_uJ(x, energy_model, act, wmem, amem, mode)
                                  for x in p.entries]))
            row[f"{p.label}_uJ"] = e
            energies.append(e)
        finite = [(e, p.label) for e, p in zip(energies, points) if math.isfinite(e)]
        row["cheapest"] = min(finite)[1] if finite else ""
        on = pareto_front(energies, [p.accuracy for p in points])
        front = sorted((e, p.label) for e, p, f in zip(energies, points, on) if f)
        row["front"] = " < ".join(label for _, label in front)
        rows.append(row)
    df = pd.DataFrame(rows)
    formats = {f"{p.label}_uJ": "{:.3g}" for p in points}
    accs = ", ".join(f"{p.label} {100 * p.accuracy:.2f}%" for p in points)
    caption = (
        "Every method re-costed under every hardware scenario of the matrix (the sweep's cost "
        "model): activation precision × where weights are read from × activation memory "
        "traffic × dense or measured (zero-skipping) activations. Energies are µJ per "
        "inference of one image, the mean over a method's seeds; nothing is re-measured. "
        "cheapest: the method with the least energy; front: the methods no other method beats "
        f"on both mean best test accuracy ({accs}) and energy, cheapest first. "
        "fp is the FP network fine-tuned with the same budget.")
    return T.Table("method_ranking", "Methods across hardware scenarios", df, caption, formats)


def ranking_findings(points: Sequence[MethodPoint], table: T.Table) -> list[str]:
    """Sentences: how often each front and each cheapest method occurs across the
    scenarios, and which factor changes the front."""
    df = table.df
    n = len(df)
    if not n or len(points) < 2:
        return []
    out = []
    fronts = df["front"].value_counts()
    parts = [f"{front or 'empty'} in {k} of {n}" for front, k in fronts.items()]
    out.append("Method front across the hardware scenarios (cheapest first): "
               + "; ".join(parts) + ".")
    cheap = df["cheapest"].value_counts()
    out.append("Cheapest method: " + "; ".join(f"{m} in {k} of {n} scenarios"
                                                for m, k in cheap.items()) + ".")
    movers = []
    for factor in ("activations", "weight_memory", "act_memory", "act_mode"):
        others = [f for f in ("activations", "weight_memory", "act_memory", "act_mode")
                  if f != factor]
        if any(g["front"].nunique() > 1 for _, g in df.groupby(others, sort=False)):
            movers.append(factor.replace("_", " "))
    out.append("The front changes with " + (", ".join(movers) if movers else "none of the factors")
               + " (holding the others fixed).")
    return out


def ttq_finding(points: Sequence[MethodPoint], table: T.Table, images: int) -> str | None:
    """The answer to "how much of TTQ's result comes from learning Wp and Wn?" in the
    sweep's own numbers: TTQ against each other method under the default scenario (fp32
    activations, weights in SRAM, activation traffic not counted, measured activations),
    accuracy differences against twice their binomial standard error on ``images`` test
    images (replicate means: the seed-to-seed spread is in the comparison table)."""
    by = {p.label: p for p in points}
    if "ttq" not in by or len(points) < 2:
        return None
    row = table.df[(table.df["activations"] == "fp32") & (table.df["weight_memory"] == "sram")
                   & (table.df["act_memory"] == "none") & (table.df["act_mode"] == "measured")]
    if row.empty:
        return None
    row = row.iloc[0]

    def se(p: float) -> float:
        return math.sqrt(max(p * (1 - p), 0.0) / images) if images else math.nan

    t = by["ttq"]
    parts = []
    for p in points:
        if p.label == "ttq":
            continue
        d = t.accuracy - p.accuracy
        bound = 2 * math.hypot(se(t.accuracy), se(p.accuracy))
        verdict = "beyond" if abs(d) > bound else "within"
        ratio = row[f"{p.label}_uJ"] / row["ttq_uJ"]  # the other method's energy over TTQ's
        parts.append(f"{p.label} {100 * p.accuracy:.2f}% at {ratio:.2f}× TTQ's energy "
                     f"(TTQ minus {p.label}: {100 * d:+.2f} points, {verdict} ±{100 * bound:.2f})")
    return (f"TTQ against the other methods (default scenario, measured energy): TTQ reaches "
            f"{100 * t.accuracy:.2f}% at {row['ttq_uJ']:.3g} µJ; " + "; ".join(parts) + ".")
