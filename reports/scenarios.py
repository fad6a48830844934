"""The scenario matrix in a report: would the saving survive other hardware assumptions?

For each quantized network of a report (ternary, or another weight format: ``kind`` names
it in the captions and sentence), :func:`ttq_analysis.scenario_matrix.scenario_matrix`
recomputes the energy saving under every combination of cost model × activation precision
× weight memory × activation memory × dense/measured activations.  This module presents
it: the full matrix as a table (CSV/LaTeX/Markdown, one row per scenario), a compact
pivot per cost model for the HTML page, a heat-map figure, and one generated sentence
naming the range and the assumption that moves the saving most.  Nothing is computed
here beyond formatting; the savings come from the analysis layer.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ttq_analysis.energy import ACT_MEMORY_LEVELS, ACTIVATION_PRECISIONS, REQUIRED_MEMORY
from ttq_analysis.scenario_matrix import (ACT_MODES, FACTOR_NAMES, MatrixSummary,
                                          describe_scenario, summarize)

from .figure_style import FigureSpec, _new_figure, _styled
from .table_format import Table

_UJ = "{:.4g}"


DERIVED_NOTE = (" Scenarios with int8 activations cost the int4 layers' multiplications with "
                "the DERIVED int4×int8 energy (int8 mult × (4·8)/(8·8): an array multiplier's "
                "energy grows with the product of its operand widths), not a published figure.")


def matrix_table(label: str, matrix: pd.DataFrame, *, name: str, kind: str = "ternary",
                 derived: bool = False) -> Table:
    """The whole matrix, one row per scenario (energies in µJ per inference).  ``kind``:
    the quantized network's word ("ternary", "binary", "int4", ...); ``derived``: its
    layers use a derived operation energy in some scenarios (said in the caption)."""
    formats = {c: _UJ for c in matrix.columns if c.endswith("_uJ")}
    formats["saving"] = "{:.2f}"
    caption = (f"Scenario matrix of {label}: the energy of the baseline (fp_*) and the {kind} "
               f"network (ttq_*) in µJ per inference of one input, split into arithmetic, "
               f"weight memory and activation memory, and the saving (fp_total_uJ / "
               f"ttq_total_uJ), under every combination of cost model, activation precision "
               f"(arithmetic and storage width; the baseline keeps its weights at that width), "
               f"weight memory, activation memory (none = not counted) and activations "
               f"(dense = every operation computed and activations stored densely; measured = "
               f"zero inputs skipped and activations stored as a 1-bit zero map plus the "
               f"nonzero values, at the measured sparsity). Empty: not computable (measured "
               f"scenarios without data)." + (DERIVED_NOTE if derived else ""))
    return Table(name=name, title=f"Scenario matrix: {label}", df=matrix.reset_index(drop=True),
                 caption=caption, formats=formats, group_by="energy_model")


def _row_key(act: str, wmem: str) -> str:
    return f"{act}, weights {wmem.upper()}"


def _col_key(amem: str, mode: str) -> str:
    return f"{'no act. memory' if amem == 'none' else 'act. ' + amem.upper()}, {mode}"


def pivot_tables(label: str, matrix: pd.DataFrame, *, name: str,
                 kind: str = "ternary") -> list[Table]:
    """One compact table of savings per cost model: rows activation precision × weight
    memory, columns activation memory × dense/measured."""
    tables = []
    for model, sub in matrix.groupby("energy_model", sort=False):
        rows = []
        for act in ACTIVATION_PRECISIONS:
            for wmem in REQUIRED_MEMORY:
                row = {"scenario": _row_key(act, wmem)}
                for amem in ACT_MEMORY_LEVELS:
                    for mode in ACT_MODES:
                        hit = sub[(sub["activations"] == act) & (sub["weight_memory"] == wmem)
                                  & (sub["act_memory"] == amem) & (sub["act_mode"] == mode)]
                        row[_col_key(amem, mode)] = float(hit["saving"].iloc[0]) if len(hit) else math.nan
                rows.append(row)
        df = pd.DataFrame(rows)
        tables.append(Table(
            name=f"{name}_{model}", title=f"Saving of {label} under cost model {model}", df=df,
            caption=(f"Energy saving of {label} (baseline / {kind} energy per inference) under "
                     f"cost model {model}. Rows: activation precision and where weights are "
                     f"read from; columns: activation memory traffic and dense or measured "
                     f"(zero-skipping) activations."),
            formats={c: "{:.2f}×" for c in df.columns if c != "scenario"}))
    return tables


def summary_sentence(label: str, summary: MatrixSummary | None, n_models: int,
                     kind: str = "ternary") -> str:
    """One sentence: the range of the saving and which assumption moves it most."""
    if summary is None:
        return f"No scenario of {label} has a computable saving."
    lo, hi = summary.lowest, summary.highest
    text = (f"Across {summary.scenarios} scenarios ({n_models} cost model"
            f"{'s' if n_models != 1 else ''}) the saving of {label} ranges from "
            f"{lo['saving']:.2f}× ({describe_scenario(lo)}) to {hi['saving']:.2f}× "
            f"({describe_scenario(hi)}).")
    if summary.strongest is not None:
        ranked = sorted(summary.effects.items(), key=lambda kv: -kv[1])
        strongest, factor = ranked[0]
        text += (f" The assumption that moves it most is {FACTOR_NAMES[strongest]}: changing it "
                 f"alone changes the saving by a factor of {factor:.2f} (median over the other "
                 f"assumptions)")
        if len(ranked) > 1:
            text += "; then " + ", ".join(f"{FACTOR_NAMES[f]} ({v:.2f})" for f, v in ranked[1:])
        text += "."
    if hi["saving"] > 1 >= lo["saving"]:
        text += f" In some scenarios the {kind} network costs as much as or more than the baseline."
    elif lo["saving"] > 1:
        text += f" The {kind} network saves energy in every scenario."
    return text


@_styled
def matrix_figure(label: str, matrix: pd.DataFrame, *, name: str,
                  kind: str = "ternary") -> FigureSpec | None:
    """Heat maps of the saving, one panel per cost model (rows: activation precision ×
    weight memory; columns: activation memory × dense/measured), each cell labelled."""
    models = list(dict.fromkeys(matrix["energy_model"]))
    savings = matrix["saving"].astype(float)
    if not np.isfinite(savings).any():
        return None
    rows = [(a, w) for a in ACTIVATION_PRECISIONS for w in REQUIRED_MEMORY]
    cols = [(m, d) for m in ACT_MEMORY_LEVELS for d in ACT_MODES]
    finite = savings[np.isfinite(savings)]
    vmin, vmax = math.log10(max(finite.min(), 1e-3)), math.log10(max(finite.max(), 1e-3))
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.1, vmax + 0.1
    fig = _new_figure((4.2 * len(models) + 0.8, 3.3))
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    image = None
    for ax, model in zip(axes, models):
        sub = matrix[matrix["energy_model"] == model]
        grid = np.full((len(rows), len(cols)), np.nan)
        for i, (a, w) in enumerate(rows):
            for j, (m, d) in enumerate(cols):
                hit = sub[(sub["activations"] == a) & (sub["weight_memory"] == w)
                          & (sub["act_memory"] == m) & (sub["act_mode"] == d)]["saving"]
                if len(hit) and np.isfinite(hit.iloc[0]):
                    grid[i, j] = float(hit.iloc[0])
        image = ax.imshow(np.log10(grid), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for i in range(len(rows)):
            for j in range(len(cols)):
                v = grid[i, j]
                text = "—" if not np.isfinite(v) else f"{v:.2f}×" if v < 10 else f"{v:.1f}×"
                light = np.isfinite(v) and (math.log10(v) - vmin) / (vmax - vmin) < 0.55
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                        color="white" if light else "black")
        ax.set_xticks(range(len(cols)), [f"{'none' if m == 'none' else m.upper()}\n{d}"
                                         for m, d in cols])
        ax.set_yticks(range(len(rows)), [f"{a}, W {w.upper()}" for a, w in rows])
        ax.set_xlabel("activation memory / activations")
        ax.set_title(f"cost model {model}", loc="left")
    cbar = fig.colorbar(image, ax=list(axes), shrink=0.9)
    ticks = [t for t in (0.5, 1, 1.5, 2, 3, 5, 10, 20, 50, 100)
             if vmin <= math.log10(t) <= vmax] or [10 ** vmin, 10 ** vmax]
    cbar.set_ticks([math.log10(t) for t in ticks], labels=[f"{t:g}×" for t in ticks])
    cbar.set_label(f"energy saving (baseline / {kind})")
    caption = (f"Energy saving of {label} (baseline energy / {kind} energy per inference) "
               f"under every scenario of the matrix: one panel per cost model; rows: "
               f"activation precision and where weights are read from (W); columns: where "
               f"activations are read and written (none = not counted) and dense or measured "
               f"(zero-skipping) activations. Colour is logarithmic in the saving; — marks a "
               f"scenario that cannot be computed (no measured data).")
    return FigureSpec(name, fig, caption)


def network_scenarios(label: str, slug: str, matrix: pd.DataFrame, *, kind: str = "ternary",
                      derived: bool = False) -> dict:
    """What the report needs for one network: sentence, tables and figure spec.  ``kind``:
    the quantized network's word in captions ("ternary", "binary", "int4", ...);
    ``derived``: its scenarios use a derived operation energy (flagged in the table's
    caption and the sentence)."""
    summary = summarize(matrix)
    n_models = int(matrix["energy_model"].nunique())
    sentence = summary_sentence(label, summary, n_models, kind) + (DERIVED_NOTE if derived else "")
    return {"label": label, "sentence": sentence,
            "table": matrix_table(label, matrix, name=f"scenario_matrix_{slug}", kind=kind,
                                  derived=derived),
            "pivots": pivot_tables(label, matrix, name=f"scenario_saving_{slug}", kind=kind),
            "figure": matrix_figure(label, matrix, name=f"{slug}_scenario_matrix", kind=kind),
            "summary": summary}


__all__ = ["matrix_table", "pivot_tables", "summary_sentence", "matrix_figure",
           "network_scenarios"]
