"""The energy saving under every combination of hardware assumptions (the scenario matrix).

A saving (baseline energy / ternary energy, :func:`ttq_analysis.results.energy_saving`;
"ternary" here and in the ``ttq_*`` columns is the quantized network in any weight format)
rests on assumptions the paper does not fix.  :func:`scenario_matrix` recomputes it from
one analysis's per-layer counts under every combination of

==================  =======================================================================
``energy_model``    the cost models compared (e.g. ``horowitz45``, ``jouppi7``)
``activations``     activation precision: fp32, fp16, int8 (arithmetic and storage widths)
``weight_memory``   where weights are read from once per inference: sram, dram
``act_memory``      where activations are read and written: none (not counted), sram, dram
``act_mode``        dense (every operation computed, activations stored densely) or
                    measured (zero inputs skipped, activations stored as a zero map plus
                    nonzero values, at the measured sparsity)
==================  =======================================================================

so 3 x 2 x 3 x 2 = 36 scenarios per cost model.  Nothing is re-measured: the layer
table of :func:`ttq_analysis.analyze` holds every count, and each scenario is one call of
:func:`ttq_analysis.energy.energy_columns`.  :func:`summarize` names the range and the
assumption that moves the saving most.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .energy import (ACT_MEMORY_LEVELS, ACTIVATION_PRECISIONS, REQUIRED_MEMORY, EnergyModel,
                     energy_columns, layer_formats, load_energy_model, scenario_totals)
from .results import PJ_PER_UJ, energy_saving

FACTORS = ("energy_model", "activations", "weight_memory", "act_memory", "act_mode")
"""The assumptions a scenario fixes, in the matrix's column order."""

FACTOR_NAMES = {"energy_model": "the cost model (process node)",
                "activations": "the activation precision",
                "weight_memory": "where weights are stored",
                "act_memory": "activation memory traffic",
                "act_mode": "dense vs measured (zero-skipping) activations"}

ACT_MODES = ("dense", "measured")
_PARTS = (("compute", "compute"), ("weight_memory", "memory"), ("act_memory", "act_memory"),
          ("total", "total"))
MATRIX_COLUMNS = (*FACTORS, *(f"fp_{name}_uJ" for name, _ in _PARTS),
                  *(f"ttq_{name}_uJ" for name, _ in _PARTS), "saving")


def scenario_matrix(ternary_layers: pd.DataFrame,
                    energy_models: Sequence[str | os.PathLike | EnergyModel],
                    baseline_layers: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per scenario (:data:`MATRIX_COLUMNS`), energies in µJ per inference.

    ``ternary_layers``: ``Analysis.layers`` of a quantized network (ternary, binary, int4,
    int8 layers: :func:`ttq_analysis.energy.layer_formats`).  The baseline side
    (``fp_*``) is its FP twin (the same layers and activations at full width), or, with
    ``baseline_layers`` (the real FP checkpoint's ``Analysis.layers``), that network with
    its own activations.  ``saving`` = fp_total_uJ / ttq_total_uJ (None/NaN when a side
    is missing, e.g. measured scenarios without data, or activation memory for a layer
    table written before activation elements were recorded).
    """
    if not bool((layer_formats(ternary_layers) != "fp").any()):
        raise ValueError("scenario_matrix: the network has no ternary layer (nor a binary, "
                         "int4 or int8 one); pass the layer table of a quantized network (and "
                         "the FP one as baseline_layers)")
    models = [load_energy_model(m) for m in energy_models]
    if not models:
        raise ValueError("scenario_matrix: give at least one energy model")
    fp_layers = ternary_layers if baseline_layers is None else baseline_layers
    rows = []
    for model, act, wmem, amem in itertools.product(models, ACTIVATION_PRECISIONS,
                                                    REQUIRED_MEMORY, ACT_MEMORY_LEVELS):
        tq = _totals(ternary_layers, model, wmem, act, amem)
        fp = tq if baseline_layers is None else _totals(fp_layers, model, wmem, act, amem)
        for mode in ACT_MODES:
            row = {"energy_model": model.name, "activations": act, "weight_memory": wmem,
                   "act_memory": amem, "act_mode": mode}
            for name, part in _PARTS:
                row[f"fp_{name}_uJ"] = fp.get(f"fp32_{mode}_{part}_pJ", math.nan) / PJ_PER_UJ
            for name, part in _PARTS:
                row[f"ttq_{name}_uJ"] = tq.get(f"ttq_{mode}_{part}_pJ", math.nan) / PJ_PER_UJ
            saving = energy_saving(row["fp_total_uJ"], row["ttq_total_uJ"])
            row["saving"] = math.nan if saving is None else saving
            rows.append(row)
    return pd.DataFrame(rows, columns=list(MATRIX_COLUMNS))


def _totals(layers: pd.DataFrame, model: EnergyModel, memory: str, precision: str,
            act_memory: str) -> dict[str, float]:
    """Network sums (pJ) of :func:`energy_columns`; empty when the layer table cannot
    cost this scenario (no activation element counts in an old analysis)."""
    try:
        return scenario_totals(energy_columns(layers, model, memory=memory, precision=precision,
                                              act_memory=act_memory))
    except ValueError:
        return {}


def network_energy_uJ(layers: pd.DataFrame, model: str | os.PathLike | EnergyModel, *,
                      memory: str = "sram", precision: str = "fp32",
                      act_memory: str = "none") -> dict[str, float]:
    """The network totals of one scenario in µJ per inference, keyed like
    :func:`energy_columns`' columns with ``_uJ`` (e.g. ``ttq_measured_total_uJ``): how an
    analysis made under one scenario is re-costed under another without re-measuring."""
    totals = scenario_totals(energy_columns(layers, load_energy_model(model), memory=memory,
                                            precision=precision, act_memory=act_memory))
    return {col[:-len("_pJ")] + "_uJ": pJ / PJ_PER_UJ for col, pJ in totals.items()}


@dataclass(frozen=True)
class MatrixSummary:
    """What a reader needs from a scenario matrix.  ``lowest``/``highest``: the rows (as
    dicts) with the smallest and largest saving; ``effects``: per factor with more than one
    level, the median over all settings of the other factors of (largest / smallest saving
    across this factor's levels), a factor-of-change; ``strongest``: the factor with the
    largest effect; ``scenarios``: rows with a saving."""

    scenarios: int
    lowest: dict
    highest: dict
    effects: dict
    strongest: str | None


def summarize(matrix: pd.DataFrame) -> MatrixSummary | None:
    """The range of the saving and the assumption that moves it most (None if no row has
    a saving)."""
    valid = matrix[np.isfinite(matrix["saving"].astype(float))]
    if valid.empty:
        return None
    lowest = valid.loc[valid["saving"].idxmin()].to_dict()
    highest = valid.loc[valid["saving"].idxmax()].to_dict()
    effects = {}
    for factor in FACTORS:
        if valid[factor].nunique() < 2:
            continue
        others = [f for f in FACTORS if f != factor]
        ratios = []
        for _, group in valid.groupby(others, sort=False):
            if group[factor].nunique() > 1:
                ratios.append(float(group["saving"].max() / group["saving"].min()))
        if ratios:
            effects[factor] = float(np.median(ratios))
    strongest = max(effects, key=effects.get) if effects else None
    return MatrixSummary(int(len(valid)), lowest, highest, effects, strongest)


def describe_scenario(row: dict) -> str:
    """A scenario in words, e.g. "int8 activations, weights in DRAM, activations in SRAM,
    measured, horowitz45"."""
    act_mem = ("activation traffic not counted" if row["act_memory"] == "none"
               else f"activations in {str(row['act_memory']).upper()}")
    return (f"{row['activations']} activations, weights in {str(row['weight_memory']).upper()}, "
            f"{act_mem}, {row['act_mode']}, {row['energy_model']}")


__all__ = ["ACT_MODES", "FACTORS", "FACTOR_NAMES", "MATRIX_COLUMNS", "MatrixSummary",
           "describe_scenario", "network_energy_uJ", "scenario_matrix", "summarize"]
