"""Accuracy against energy across a run's epochs: which checkpoint is the better trade-off.

The numbers come from :mod:`ttq_analysis.epoch_energy` (each epoch's dense-activation
energy from the history's weight fractions, exact up to filters that lose a sign); this
module turns them into the report's figure, a table (exported like every table) and the
sentence that says which epochs are on the front and where their weights are.

``best.pt`` is the epoch of highest test accuracy and ``last.pt`` the last epoch; a run
trained with ``ttq-train --keep-epochs`` also keeps ``epochs/epoch-NNN.pt`` for every
epoch, so any epoch on the front can be taken (the table's ``checkpoint`` column says
which file holds it, when the file is beside the analysed checkpoint).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ttq_analysis.epoch_energy import check_filters, from_analysis
from ttq_core.train.run_folder import epoch_file

from . import figure_style as S
from .table_format import Table

def _checkpoint_files(meta: dict, epochs: pd.Series) -> list[str]:
    """Per epoch, the files that hold its weights ('' when none is known to): the analysed
    checkpoint itself (at the epoch it was written), ``best.pt`` beside it (at the best
    epoch) and ``epochs/epoch-NNN.pt`` of ``ttq-train --keep-epochs``, each only if it
    exists."""
    ck = meta.get("checkpoint") or {}
    source = Path(str(ck["source"])) if ck.get("source") else None
    metrics = ck.get("metrics") or {}
    folder = source.parent if source is not None else None
    out = []
    for e in epochs.astype(int):
        names = []
        if source is not None and metrics.get("epochs_completed") == e and source.is_file():
            names.append(source.name)
        if (folder is not None and metrics.get("best_epoch") == e and "best.pt" not in names
                and (folder / "best.pt").is_file()):
            names.append("best.pt")
        if folder is not None and (folder / epoch_file(e)).is_file():
            names.append(epoch_file(e))
        out.append(", ".join(names))
    return out


def epoch_table(analysis, *, name: str = "epochs", who: str | None = None) -> Table | None:
    """Every epoch's test accuracy, weight sparsity, dense additions and energy, the front
    marked; ``None`` without history or quantized layers."""
    df = from_analysis(analysis)
    if df is None or df["ttq_dense_total_uJ"].isna().all():
        return None  # no history of these quantized layers (e.g. a what-if of an FP checkpoint)
    out = pd.DataFrame({
        "epoch": df["epoch"].astype(int),
        "test_acc_pct": 100 * df["test_acc"],
        "weight_sparsity": df["weight_sparsity"],
        "ternary_adds_per_image": df["ternary_adds"],
        "ttq_dense_total_uJ": df["ttq_dense_total_uJ"],
        "on_front": df["on_front"].astype(bool),
        "checkpoint": _checkpoint_files(analysis.meta or {}, df["epoch"]),
    })
    probe = ""
    if df["probe_act_sparsity"].notna().any():
        out.insert(3, "probe_act_sparsity", df["probe_act_sparsity"])
        images = {int((h.get("probe") or {}).get("images") or 0)
                  for h in ((analysis.meta or {}).get("checkpoint") or {}).get("history") or []
                  if isinstance(h, dict) and h.get("probe")}
        probe = (f" probe_act_sparsity: the mean over quantized layers of the zero fraction "
                 f"of their inputs on the same {', '.join(map(str, sorted(images)))} test "
                 f"images after each epoch (ttq-train --probe-images; not used in the energy, "
                 f"which assumes dense activations).")
    filters = check_filters(analysis.layers)
    exact = ("every filter of the analysed checkpoint has both signs, so the figures are exact "
             "for any epoch whose filters still had both"
             if filters["missing_signs"] == 0 else
             f"{filters['missing_signs']} (filter, sign) pairs of the analysed checkpoint are "
             f"empty, so other epochs' additions are exact only if the same ones were")
    caption = (f"Per epoch of {S._model_phrase(analysis.meta)}: test top-1 accuracy (%) from "
               f"the training's own end-of-epoch evaluation, the zero fraction over all "
               f"ternary weights, the dense additions per image and the energy per inference "
               f"(µJ, dense activations, the report's cost model and scenario), from the "
               f"training history's weight fractions and this checkpoint's exact counts "
               f"(only the additions change between epochs; {exact}). on_front: not "
               f"dominated by an epoch with lower-or-equal energy and higher-or-equal "
               f"accuracy. checkpoint: the file in the run folder that holds the epoch's "
               f"weights (blank: not kept; ttq-train --keep-epochs keeps every epoch). "
               f"Choosing an epoch by test accuracy selects on the test set: for a paper, "
               f"choose on held-out training images." + probe)
    return Table(name=name, title=f"Accuracy and energy per epoch: {who or 'network'}", df=out,
                 caption=caption,
                 formats={"test_acc_pct": "{:.2f}", "weight_sparsity": "{:.3f}",
                          "probe_act_sparsity": "{:.3f}",
                          "ternary_adds_per_image": "{:,.0f}", "ttq_dense_total_uJ": "{:.3f}"})


def front_sentence(table: Table | None) -> str | None:
    """One sentence on the front: which epochs, the energy and accuracy they span, and how
    the best-accuracy epoch compares with the cheapest front epoch."""
    if table is None or table.df.empty:
        return None
    df = table.df
    front = df[df["on_front"]].sort_values("ttq_dense_total_uJ")
    if front.empty:
        return None
    best = df.loc[df["test_acc_pct"].idxmax()]
    cheap = front.iloc[0]
    epochs = ", ".join(str(int(e)) for e in front["epoch"])
    saving = 100 * (1 - cheap["ttq_dense_total_uJ"] / best["ttq_dense_total_uJ"])
    return (f"{len(front)} of {len(df)} epochs are on the accuracy–energy front (epochs "
            f"{epochs}). The most accurate, epoch {int(best['epoch'])} "
            f"({best['test_acc_pct']:.2f}%, {best['ttq_dense_total_uJ']:.3f} µJ), costs "
            f"{saving:.1f}% more energy than the cheapest front epoch, epoch "
            f"{int(cheap['epoch'])} ({cheap['test_acc_pct']:.2f}%, "
            f"{cheap['ttq_dense_total_uJ']:.3f} µJ, dense activations).")


def early_sentence(history) -> str | None:
    """How well this run's early per-layer zero fractions rank the layers as its last
    epoch does (Spearman's ρ across layers, :mod:`ttq_analysis.early_signal`), with the
    README's finding on what that does and does not predict."""
    from ttq_analysis.early_signal import early_vs_final
    df = early_vs_final(history or [], keys=("frac_zero",))
    df = df[df["rho"].notna()]
    if df.empty:
        return None
    final = int(df["final_epoch"].iloc[0])
    parts = ", ".join(f"{r.rho:.2f} after epoch {int(r.k)}" for r in df.itertuples())
    return (f"Early signal: ranked by zero fraction, the layers after the first epochs match "
            f"their epoch-{final} ranking with Spearman's ρ = {parts} ({int(df['layers'].iloc[0])} "
            f"layers). Across the committed ResNet-20 runs early zero fractions forecast the "
            f"final ones well at LR 0.01 and only loosely at LR 0.1, and they do not predict "
            f"which layers are sensitive (README, \"Sparsity evolution: what it predicts\").")


@S._styled
def epoch_tradeoff_figure(table: Table | None, meta: dict | None = None) -> S.FigureSpec | None:
    """Test accuracy (%) against dense energy per inference (µJ), one point per epoch,
    joined in epoch order, front epochs filled and labelled."""
    if table is None or table.df["test_acc_pct"].isna().all():
        return None
    df = table.df
    fig = S._new_figure((6.4, 3.4))
    ax = fig.subplots()
    ax.plot(df["ttq_dense_total_uJ"], df["test_acc_pct"], color="#BBBBBB", linewidth=0.7,
            zorder=1)
    off = df[~df["on_front"]]
    on = df[df["on_front"]].sort_values("ttq_dense_total_uJ")
    ax.scatter(off["ttq_dense_total_uJ"], off["test_acc_pct"], s=14, facecolors="none",
               edgecolors="#0072B2", linewidths=0.8, label="epoch", zorder=2)
    ax.step(on["ttq_dense_total_uJ"], on["test_acc_pct"], where="post", color="#D55E00",
            linewidth=1.1, label="Pareto front", zorder=2)
    ax.scatter(on["ttq_dense_total_uJ"], on["test_acc_pct"], s=18, color="#D55E00", zorder=3)
    label = set(on["epoch"]) | {int(df["epoch"].iloc[0]), int(df["epoch"].iloc[-1])}
    for r in df.itertuples(index=False):
        if int(r.epoch) in label and not (math.isnan(r.ttq_dense_total_uJ)
                                          or math.isnan(r.test_acc_pct)):
            ax.annotate(str(int(r.epoch)), (r.ttq_dense_total_uJ, r.test_acc_pct),
                        xytext=(3, 3), textcoords="offset points", fontsize=6)
    ax.set_xlabel("energy per inference (µJ, dense activations)")
    ax.set_ylabel("test top-1 accuracy (%)")
    ax.grid(linewidth=0.3, alpha=0.6)
    ax.legend(frameon=False, fontsize=6, loc="lower right")
    caption = (f"Test accuracy against energy per inference after each training epoch of "
               f"{S._model_phrase(meta)} (numbers: the per-epoch table). The grey line joins "
               f"the epochs in order (first and last labelled); filled points on the step line "
               f"are the epochs on the front. " + (front_sentence(table) or "") + " "
               + (early_sentence(((meta or {}).get("checkpoint") or {}).get("history")) or ""))
    return S.FigureSpec("epoch_tradeoff", fig, caption.strip())
