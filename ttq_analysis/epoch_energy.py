"""Energy of every epoch's weights, from a run's training history alone.

A checkpoint's history (:mod:`ttq_core.train.history`) records, after every epoch, each
quantized layer's fractions of +, 0 and − weights.  With dense activations (the paper's
assumption) a ternary layer's additions depend on its weights only through the number of
nonzero weights (:func:`ttq_analysis.ternary_ops.dense_ternary_ops`): per image,

    ternary_adds = output_positions × (nonzero weights − filters with a nonzero weight)

because every output element of output channel c sums the n_c nonzero terms of its
filter (n_c − 1 additions) and there are ``output_positions`` such elements per channel
(groups included: Σ_c n_c is the layer's nonzero count).  The multiplications are one per
sign present in a filter, per output element.

So an epoch's dense counts follow from the analysed checkpoint's exact counts and the
history's fractions:

    adds(epoch) = adds(checkpoint) + output_positions × (nonzero(epoch) − nonzero(checkpoint))
    mults(epoch) = mults(checkpoint)

with ``nonzero = round((1 − frac_zero) × weights)`` and ``weights = macs /
output_positions`` (conv: C_out·C_in/groups·k², linear: in·out).  This is **exact** when
every filter has at least one + and one − weight at both epochs (then the filter and sign
counts do not change); the history records layer fractions only, so a filter that empties
or loses a sign between the two epochs is not seen (the checkpoint's own row is exact by
construction).  :func:`check_filters` states whether the analysed checkpoint meets it.

Energies then come from :func:`ttq_analysis.energy.energy_columns` on the epoch's counts,
under the analysis's own cost model, memory, activation precision and activation memory
(the default scenario's ``ttq_dense``): only compute changes between epochs, weight and
dense activation memory do not depend on which weights are zero.  Binary and integer
layers (other quantizers) cost the same in every epoch under dense activations, so
their epochs differ only in accuracy.

Units: energies in µJ per inference of one image; accuracies as fractions in [0, 1];
counts per image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .energy import energy_columns, layer_formats, scenario_totals
from .pareto import pareto_front

# columns of :func:`epoch_energies`
EPOCH_COLUMNS = ("epoch", "test_acc", "weight_sparsity", "ternary_adds", "ternary_mults",
                 "ttq_dense_compute_uJ", "ttq_dense_total_uJ", "on_front", "probe_act_sparsity")


class EpochEnergyError(ValueError):
    """A history that cannot be matched to the analysed layers (one-line message)."""


def _weights(layers: pd.DataFrame) -> pd.Series:
    """Weights per layer (bias excluded): MACs per image / output positions per image."""
    return (layers["macs"].astype(float) / layers["output_positions"].astype(float)).round()


def epoch_counts(layers: pd.DataFrame, entry: dict) -> pd.DataFrame:
    """``layers`` (an analysis layer table) with each ternary layer's dense
    ``ternary_adds`` and ``weight_sparsity`` moved to the weights of history ``entry``
    (module doc); other layers unchanged.  A ternary layer that the entry does not
    record gives NaN adds (so that epoch's energy is NaN, never a silent mix)."""
    out = layers.copy()
    recorded = entry.get("layers") or {}
    ternary = layer_formats(layers) == "ternary"
    weights = _weights(layers)
    for i in out.index[ternary]:
        rec = recorded.get(out.at[i, "layer"]) or {}
        zero = rec.get("frac_zero")
        if zero is None or not math.isfinite(float(zero)):
            out.at[i, "ternary_adds"] = math.nan
            out.at[i, "weight_sparsity"] = math.nan
            continue
        now = round((1.0 - float(zero)) * weights[i])
        then = round((1.0 - float(layers.at[i, "weight_sparsity"])) * weights[i])
        out.at[i, "ternary_adds"] = (float(layers.at[i, "ternary_adds"])
                                     + float(layers.at[i, "output_positions"]) * (now - then))
        out.at[i, "weight_sparsity"] = float(zero)
    return out


def epoch_energies(layers: pd.DataFrame, history: list[dict] | None, model: Any,
                   memory: str = "sram", precision: str = "fp32",
                   act_memory: str = "none") -> pd.DataFrame | None:
    """One row per history entry: ``epoch``, ``test_acc`` (as recorded by the training's
    own end-of-epoch evaluation), ``weight_sparsity`` (zero fraction over all ternary
    weights), the network's dense ``ternary_adds``/``ternary_mults`` per image and its
    ``ttq_dense_compute_uJ``/``ttq_dense_total_uJ`` under the given scenario, and
    ``on_front`` (not dominated in (lower total energy, higher test accuracy) by another
    epoch), and ``probe_act_sparsity``: the mean over quantized layers of their input zero
    fraction on the probe images (``ttq-train --probe-images``; NaN where not recorded).  ``None`` when there is no history or no quantized layer.

    ``model``, ``memory``, ``precision``, ``act_memory``: as for
    :func:`ttq_analysis.energy.energy_columns` (pass the analysis's own, see
    :func:`from_analysis`)."""
    entries = [h for h in (history or []) if isinstance(h, dict)]
    formats = layer_formats(layers)
    if not entries or not (formats != "fp").any():
        return None
    ternary = formats == "ternary"
    weights = _weights(layers)
    rows = []
    for i, entry in enumerate(entries):
        counts = epoch_counts(layers, entry)
        energy = energy_columns(counts, model, memory=memory, precision=precision,
                                act_memory=act_memory)
        totals = scenario_totals(energy)
        zeros = (counts.loc[ternary, "weight_sparsity"] * weights[ternary]).sum(min_count=1)
        acc = entry.get("test_acc")
        rows.append({
            "epoch": int(entry.get("epoch", i + 1)),
            "test_acc": math.nan if acc is None else float(acc),
            "weight_sparsity": (float(zeros / weights[ternary].sum())
                                if ternary.any() and counts.loc[ternary, "weight_sparsity"].notna().all()
                                else math.nan),
            "ternary_adds": float(counts["ternary_adds"].sum(min_count=1)),
            "ternary_mults": float(counts["ternary_mults"].sum(min_count=1)),
            "ttq_dense_compute_uJ": totals["ttq_dense_compute_pJ"] / 1e6,
            "ttq_dense_total_uJ": totals["ttq_dense_total_pJ"] / 1e6,
            "probe_act_sparsity": _probe_mean(entry, layers.loc[formats != "fp", "layer"]),
        })
    df = pd.DataFrame(rows)
    df["on_front"] = pareto_front(df["ttq_dense_total_uJ"], df["test_acc"])
    return df[list(EPOCH_COLUMNS)]


def _probe_mean(entry: dict, names) -> float:
    """Mean over the quantized layers of the input zero fraction that ``ttq-train
    --probe-images`` recorded after this epoch (NaN when the epoch has no probe or it
    misses one of the layers)."""
    recorded = (entry.get("probe") or {}).get("act_sparsity") or {}
    values = [recorded.get(n) for n in names]
    if not values or any(v is None for v in values):
        return math.nan
    return float(np.mean([float(v) for v in values]))


def from_analysis(analysis) -> pd.DataFrame | None:
    """:func:`epoch_energies` of an :class:`~ttq_analysis.Analysis` of a checkpoint with
    history, under the analysis's own cost model and scenario (``None`` without history,
    without a quantized layer, or without a recorded cost model)."""
    meta = analysis.meta or {}
    history = (meta.get("checkpoint") or {}).get("history")
    model = meta.get("energy_model")
    if not history or not isinstance(model, dict) or "ops" not in model:
        return None
    return epoch_energies(analysis.layers, history, model, memory=meta.get("memory", "sram"),
                          precision=meta.get("precision", "fp32"),
                          act_memory=meta.get("act_memory", "none"))


def check_filters(layers: pd.DataFrame) -> dict[str, int]:
    """What the exactness condition of the module doc needs from the analysed checkpoint:
    ``filters`` (output channels of its ternary layers) and ``missing_signs`` (how many
    (filter, sign) pairs have no weight: a filter with both a + and a − weight costs two
    multiplications per output position, so this is 2·filters − Σ mults / positions).
    ``missing_signs == 0`` means every filter has both signs."""
    rows = layers[layer_formats(layers) == "ternary"]
    positions = rows["output_positions"].astype(float)
    filters = (rows["out_elements"].astype(float) / positions).round()  # C_out (linear: out)
    mults = (rows["ternary_mults"].astype(float) / positions).sum()
    return {"filters": int(filters.sum()), "missing_signs": int(round(2 * filters.sum() - mults))}
