"""Comparison report of several TTQ settings of one network (what ``ttq-sweep`` renders).

Input: one :class:`SweepEntry` per setting (label, how it was trained, its analysis, its
training history) and, optionally, the analysis of the FP baseline they were fine-tuned
from.  Output folder: ``report.html`` (self-contained), ``comparison.{csv,tex,md}``,
``ablation_grad_scaling.{csv,tex,md}`` when a with/without-scaling pair is present,
every figure as SVG/PNG, and ``sweep.json`` (every analysis).  Built aside and moved into
place like :func:`reports.render.render_report`.

The Pareto front is over (energy per inference, best test accuracy): a setting is on the
front when no other setting has at most its energy and at least its accuracy with one of
the two strictly better.  It is computed for measured energy (zero activations skipped,
the default) and for dense-activation energy.

Size: about 500 lines: the comparison's numbers (Pareto front, ablation, findings with
their noise) and its figures read the same entries; splitting them would scatter one
report over several modules.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ttq_analysis import Analysis
from ttq_analysis.pareto import pareto_front
from ttq_analysis.results import ACTIVATIONS, savings_over
from ttq_core import __version__
from ttq_core.io import atomic_write_text

from . import figures as F
from . import tables as T
from .render import build_atomically, figure_item, slugify
from .templating import environment

__all__ = ["SweepEntry", "pareto_front", "comparison_table", "ablation_pairs",
           "ablation_table", "findings", "render_comparison"]


@dataclass
class SweepEntry:
    """One trained setting: ``label`` (unique), ``description`` of its threshold rule
    (a sentence), ``rule`` (a few words for the table),
    ``analysis`` of its selected checkpoint, ``history`` (list of epoch entries),
    ``grad_scaling`` and ``key`` (the setting with grad scaling removed, for pairing
    ablation twins), ``replicate_key`` (``key`` without the seed), and ``plan`` (a threshold-plan dict, if one chose its thresholds)."""

    label: str
    description: str
    analysis: Analysis
    history: list[dict]
    grad_scaling: bool = True
    key: str = ""
    plan: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    rule: str = ""
    replicate_key: str = ""   # ``key`` without the seed: replicates of one setting share it


# ----------------------------------------------------------------------------- numbers

def _accs(history: list[dict]) -> tuple[float, float]:
    accs = [h.get("test_acc") for h in history if h.get("test_acc") is not None]
    return (max(accs), accs[-1]) if accs else (math.nan, math.nan)


def _num(v) -> float:
    return math.nan if v is None else float(v)


def _own_energy(net, mode: str) -> float:
    """A setting's network energy (µJ): the quantized network's (``ttq_*``), or, for a
    network without quantized layers (``method=fp``), the FP network's own (``fp32_*``)."""
    quantized = _num(getattr(net.energy, f"ttq_{mode}").total_uJ)
    return quantized if not math.isnan(quantized) else _num(getattr(net.energy, f"fp32_{mode}").total_uJ)


def comparison_table(entries: Sequence[SweepEntry], baseline: Analysis | None = None) -> T.Table:
    """One row per setting (and the FP baseline first, when given): accuracy, weight and
    activation sparsity, energy dense and measured (µJ per inference), savings over the FP
    baseline (like with like), dense / measured ratio, Pareto membership."""
    rows = []
    savings = {act: [] for act in ACTIVATIONS}
    for e in entries:
        net = e.analysis.network
        if baseline is not None:
            for act in ACTIVATIONS:
                savings[act].append(_num(savings_over(baseline.network, net, act).saving))
        best, final = _accs(e.history)
        d = T.dense_assumption(e.analysis)
        rows.append({
            "setting": e.label, "threshold_rule": e.rule or e.description,
            "grad_scaling": "on" if e.grad_scaling else "off",
            "best_test_acc": best, "final_test_acc": final,
            "weight_sparsity": _num(net.sparsity.weight_sparsity),
            "act_sparsity": _num(net.sparsity.act_sparsity_macs_weighted),
            "energy_dense_uJ": _own_energy(net, "dense"),
            "energy_measured_uJ": _own_energy(net, "measured"),
            "dense_over_measured": d["ratio"] if d else math.nan,
        })
    df = pd.DataFrame(rows)
    df["pareto_measured"] = pareto_front(df["energy_measured_uJ"], df["best_test_acc"])
    df["pareto_dense"] = pareto_front(df["energy_dense_uJ"], df["best_test_acc"])
    if baseline is not None:
        b = baseline.network
        for act in ACTIVATIONS:
            df[f"saving_{act}"] = savings[act]
        fp_acc = _num(b.accuracy.test_acc)
        d = T.dense_assumption(baseline)
        fp_row = {"setting": "FP32 baseline", "threshold_rule": "full precision",
                  "grad_scaling": "", "best_test_acc": fp_acc, "final_test_acc": math.nan,
                  "weight_sparsity": math.nan,
                  "act_sparsity": _num(b.sparsity.act_sparsity_macs_weighted),
                  "energy_dense_uJ": _num(b.energy.fp32_dense.total_uJ),
                  "energy_measured_uJ": _num(b.energy.fp32_measured.total_uJ),
                  "dense_over_measured": d["ratio"] if d else math.nan,
                  "pareto_measured": False, "pareto_dense": False,
                  "saving_dense": 1.0, "saving_measured": 1.0}
        df = pd.concat([pd.DataFrame([fp_row]), df], ignore_index=True)
    images = {int(e.analysis.meta.get("images") or 0) for e in entries}
    a0 = entries[0].analysis
    methods = any((e.extra or {}).get("method") for e in entries)
    caption = (
        f"{'Settings' if methods else 'TTQ settings'} of {a0.meta.get('arch', 'the network')} "
        f"compared. Accuracies are top-1 "
        f"on the test images of each run (best epoch and final epoch"
        + ("; the FP32 baseline's measured on the same images" if baseline is not None else "")
        + f"); the analysis uses the "
        f"best-epoch checkpoint on {T._join(f'{n:,}' for n in sorted(images))} test images. "
        + ("Weight sparsity is the fraction of zero weights in the quantized layers (none "
           "for fp and binary weights); " if methods else
           "Weight sparsity is the fraction of zero ternary weights; ")
        + f"activation sparsity is "
        f"MAC-weighted. Energies are per inference of one image: dense assumes every "
        f"activation nonzero (the paper's convention), measured skips the zero activations "
        f"counted on the data. "
        + ("Savings are the FP32 baseline's energy over each setting's, dense over dense and "
           "measured over measured (the baseline's own activations). " if baseline is not None else "")
        + "pareto_* marks settings no other setting beats on both energy and best accuracy. "
        + T._assumptions([e.analysis for e in entries]))
    formats = {"best_test_acc": "{:.4f}", "final_test_acc": "{:.4f}",
               "weight_sparsity": "{:.3f}", "act_sparsity": "{:.3f}",
               "energy_dense_uJ": "{:.2f}", "energy_measured_uJ": "{:.2f}",
               "dense_over_measured": "{:.2f}", "saving_dense": "{:.2f}",
               "saving_measured": "{:.2f}"}
    return T.Table("comparison", "Settings compared", df, caption, formats)


def ablation_pairs(entries: Sequence[SweepEntry]) -> list[tuple[SweepEntry, SweepEntry]]:
    """(with scaling, without scaling) pairs of settings equal in everything else."""
    with_s = {e.key: e for e in entries if e.grad_scaling}
    return [(with_s[e.key], e) for e in entries if not e.grad_scaling and e.key in with_s]


def _mean_layer_series(history: list[dict], key: str) -> np.ndarray:
    out = []
    for h in history:
        vals = [v.get(key) for v in (h.get("layers") or {}).values() if v.get(key) is not None]
        out.append(float(np.mean(vals)) if vals else math.nan)
    return np.array(out, dtype=float)


def _epochs_to(history: list[dict], fraction: float) -> float:
    """First epoch whose test accuracy reaches ``fraction`` of the run's best."""
    best, _ = _accs(history)
    for h in history:
        if h.get("test_acc") is not None and h["test_acc"] >= fraction * best:
            return float(h.get("epoch"))
    return math.nan


def ablation_table(pairs: Sequence[tuple[SweepEntry, SweepEntry]]) -> T.Table:
    """Convergence, accuracy, sparsity and gradient statistics with and without TTQ's
    per-region latent-gradient scaling (Wp / 1 / Wn)."""
    rows = []
    for on, off in pairs:
        for e in (on, off):
            best, final = _accs(e.history)
            row = {"setting": e.label, "grad_scaling": "on" if e.grad_scaling else "off",
                   "best_test_acc": best, "final_test_acc": final,
                   "epochs_to_95pct_of_best": _epochs_to(e.history, 0.95),
                   "zero_frac_first_epoch": _mean_layer_series(e.history[:1], "frac_zero")[0]
                   if e.history else math.nan,
                   "zero_frac_last_epoch": _mean_layer_series(e.history[-1:], "frac_zero")[0]
                   if e.history else math.nan}
            for region in ("pos", "zero", "neg"):
                raw = _mean_layer_series(e.history, f"grad_abs_mean_{region}")
                applied = _mean_layer_series(e.history, f"grad_abs_mean_scaled_{region}")
                row[f"grad_{region}_raw"] = float(np.nanmean(raw)) if np.isfinite(raw).any() else math.nan
                row[f"grad_{region}_applied"] = (float(np.nanmean(applied))
                                                 if np.isfinite(applied).any() else math.nan)
            rows.append(row)
    df = pd.DataFrame(rows)
    caption = (
        "Ablation of TTQ's per-region learning-rate multipliers: the same network, data, "
        "schedule and seed trained with the latent gradient scaled by Wp / 1 / Wn in the "
        "+ / 0 / − regions (on) and with plain straight-through gradients (off). Accuracies "
        "are top-1 on each run's test images; epochs_to_95pct_of_best is the first epoch "
        "reaching 95% of the run's best accuracy; zero_frac_* is the mean over ternary layers "
        "of the fraction of zero weights after the first and the last epoch. grad_*_raw is "
        "the mean |∂L/∂w_t| reaching each region, grad_*_applied the mean |gradient| applied "
        "to the latent weights (after scaling), each averaged over the sampled steps, the "
        "ternary layers and the epochs.")
    fmt = {c: "{:.3g}" for c in df.columns if c.startswith("grad_")}
    fmt.update({"best_test_acc": "{:.4f}", "final_test_acc": "{:.4f}",
                "epochs_to_95pct_of_best": "{:.0f}", "zero_frac_first_epoch": "{:.3f}",
                "zero_frac_last_epoch": "{:.3f}"})
    return T.Table("ablation_grad_scaling", "Latent-gradient scaling ablation", df, caption, fmt)


def _acc_se(p: float, n: int) -> float:
    """Binomial standard error of an accuracy ``p`` measured on ``n`` images."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else math.nan


def findings(entries: Sequence[SweepEntry], table: T.Table) -> list[str]:
    """Sentences that answer the sweep's comparisons with its own numbers: energy-aware vs
    uniform plans at the same budget, gradient scaling on vs off, the dense assumption.

    Accuracy differences are judged against twice their standard error, taken as for two
    independent binomial estimates on ``n`` test images (approximate: both runs use the
    same images, which makes the true error of the difference smaller)."""
    df = table.df.set_index("setting")
    out = []
    by_label = {e.label: e for e in entries}
    n_images = int(entries[0].analysis.meta.get("images") or 0)

    def diff_phrase(a: str, b: str) -> str:
        pa, pb = df.loc[a, "best_test_acc"], df.loc[b, "best_test_acc"]
        se = math.hypot(_acc_se(pa, n_images), _acc_se(pb, n_images))
        d = 100 * (pa - pb)
        verdict = ("within" if abs(pa - pb) <= 2 * se else "beyond")
        return (f"{d:+.2f} points, {verdict} twice the standard error of the difference "
                f"(±{200 * se:.2f} points on {n_images:,} test images)")

    plans = {}
    for e in entries:
        if e.plan and e.grad_scaling:
            budget = (e.plan.get("details") or {}).get("budget_spec") or \
                (e.plan.get("details") or {}).get("budget")
            plans.setdefault(budget, {})[e.plan.get("method")] = e.label
    for budget, methods in plans.items():
        if {"energy-aware", "uniform"} <= set(methods):
            a, u = methods["energy-aware"], methods["uniform"]
            out.append(
                f"Budget {budget}: the energy-aware plan ({a}) reaches "
                f"{100 * df.loc[a, 'best_test_acc']:.2f}% at {df.loc[a, 'energy_measured_uJ']:.2f} µJ "
                f"measured ({df.loc[a, 'energy_dense_uJ']:.2f} dense), the uniform plan ({u}) "
                f"{100 * df.loc[u, 'best_test_acc']:.2f}% at {df.loc[u, 'energy_measured_uJ']:.2f} µJ "
                f"({df.loc[u, 'energy_dense_uJ']:.2f} dense): energy-aware minus uniform is "
                f"{diff_phrase(a, u)}.")
    for on, off in ablation_pairs(entries):
        z_on = _mean_layer_series(on.history[-1:], "frac_zero")[0] if on.history else math.nan
        z_off = _mean_layer_series(off.history[-1:], "frac_zero")[0] if off.history else math.nan
        z0_on = _mean_layer_series(on.history[:1], "frac_zero")[0] if on.history else math.nan
        out.append(
            f"Latent-gradient scaling ({on.label} vs {off.label}): with scaling minus without "
            f"is {diff_phrase(on.label, off.label)}; the mean zero-weight fraction ends at "
            f"{z_on:.3f} with scaling (after epoch 1: {z0_on:.3f}) and {z_off:.3f} without.")
    out.extend(_replicate_findings(ablation_pairs(entries), df))
    ratios = [(lab, r) for lab, r in df["dense_over_measured"].items()
              if lab in by_label and not math.isnan(r)]
    if ratios:
        lo, hi = min(r for _, r in ratios), max(r for _, r in ratios)
        holding = [lab for lab, r in ratios if abs(r - 1) <= T.DENSE_TOLERANCE]
        out.append(
            f"Dense-activation assumption: it overstates the "
            f"{'networks' if any((e.extra or {}).get('method') for e in entries) else 'ternary networks'}' "
            f"energy "
            f"{lo:.2f}–{hi:.2f}× across the settings; it holds (within "
            f"{T.DENSE_TOLERANCE:.0%}) for {', '.join(holding) if holding else 'none of them'}.")
    front_change = _front_under_default_scenario(entries, df)
    if front_change:
        out.append(front_change)
    return out


def _front_under_default_scenario(entries: Sequence[SweepEntry], df: pd.DataFrame) -> str | None:
    """When the sweep was costed under another hardware scenario (``--activations``,
    ``--act-memory``), whether its Pareto front on measured energy differs from the front
    under the default scenario (fp32 activations, activation memory not counted), the
    energies re-costed from the same measured counts (nothing re-measured)."""
    from ttq_analysis.scenario_matrix import network_energy_uJ
    meta = entries[0].analysis.meta
    precision, act_memory = str(meta.get("precision", "fp32")), str(meta.get("act_memory", "none"))
    if (precision, act_memory) == ("fp32", "none"):
        return None
    raw = meta.get("energy_model")
    if not isinstance(raw, dict):
        return None
    labels = [e.label for e in entries]
    try:
        default_energy = [network_energy_uJ(e.analysis.layers, raw,
                                            memory=str(e.analysis.meta.get("memory", "sram")))
                          ["ttq_measured_total_uJ"] for e in entries]
    except ValueError:  # an analysis without the per-layer counts it needs
        return None
    accs = [float(df.loc[lab, "best_test_acc"]) for lab in labels]
    default_front = {lab for lab, on in zip(labels, pareto_front(default_energy, accs)) if on}
    chosen_front = {lab for lab in labels if bool(df.loc[lab, "pareto_measured"])}
    scenario = (f"{precision} activations"
                + (f", activations read and written in {act_memory.upper()}"
                   if act_memory != "none" else ""))
    ordered = lambda names: ", ".join(lab for lab in labels if lab in names) or "none"  # noqa: E731
    if default_front == chosen_front:
        return (f"Hardware scenario: under {scenario} the Pareto front on measured energy is "
                f"the same as under the default scenario (fp32 activations, activation memory "
                f"not counted): {ordered(chosen_front)}.")
    joined, left = chosen_front - default_front, default_front - chosen_front
    return (f"Hardware scenario: under {scenario} the Pareto front on measured energy is "
            f"{ordered(chosen_front)}; under the default scenario (fp32 activations, activation "
            f"memory not counted) it would be {ordered(default_front)}: the front changes"
            + (f" ({ordered(joined)} join{'s' if len(joined) == 1 else ''}" if joined else " (")
            + ("; " if joined and left else "")
            + (f"{ordered(left)} drop{'s' if len(left) == 1 else ''} out" if left else "")
            + ").")


def _replicate_findings(pairs, df) -> list[str]:
    """One sentence per setting whose ablation was repeated under several seeds: the mean
    best accuracy with and without gradient scaling and the per-seed differences, so a
    reader sees whether the sign holds across seeds (two seeds show consistency, not a
    significance level)."""
    groups: dict[str, list] = {}
    for on, off in pairs:
        if on.replicate_key:
            groups.setdefault(on.replicate_key, []).append((on, off))
    out = []
    for group in groups.values():
        if len(group) < 2:
            continue
        acc_on = [df.loc[on.label, "best_test_acc"] for on, _ in group]
        acc_off = [df.loc[off.label, "best_test_acc"] for _, off in group]
        diffs = [100 * (a - b) for a, b in zip(acc_on, acc_off)]
        z_on = [_mean_layer_series(on.history[-1:], "frac_zero")[0] for on, _ in group
                if on.history]
        z_off = [_mean_layer_series(off.history[-1:], "frac_zero")[0] for _, off in group
                 if off.history]
        sign = ("scaling ahead under every seed" if all(d > 0 for d in diffs) else
                "scaling behind under every seed" if all(d < 0 for d in diffs) else
                "the sign changes between seeds")
        out.append(
            f"Over {len(group)} seeds ({group[0][0].label} and its replicates): mean best "
            f"accuracy {100 * float(np.mean(acc_on)):.2f}% with gradient scaling and "
            f"{100 * float(np.mean(acc_off)):.2f}% without; per-seed differences "
            f"{', '.join(f'{d:+.2f}' for d in diffs)} points ({sign}); mean zero fraction at "
            f"the last epoch {float(np.mean(z_on)):.3f} with and {float(np.mean(z_off)):.3f} "
            f"without.")
    return out


# ----------------------------------------------------------------------------- figures

_MARKERS = "osD^vP*Xhp<>"


@F._styled
def pareto_figure(table: T.Table, assumptions: str = "") -> F.FigureSpec | None:
    df = table.df[table.df["setting"] != "FP32 baseline"]
    if df.empty or df["best_test_acc"].isna().all():
        return None
    fig = F._new_figure((7.6, 3.6))
    ax = fig.subplots()
    for r, (color, _, mk) in zip(df.itertuples(index=False), _line_styles(len(df))):
        ax.plot(r.energy_measured_uJ, 100 * r.best_test_acc, marker=mk, linestyle="none",
                color=color, markersize=6, label=r.setting)
        if not math.isnan(r.energy_dense_uJ):
            ax.plot(r.energy_dense_uJ, 100 * r.best_test_acc, marker=mk, linestyle="none",
                    markerfacecolor="none", color=color, markersize=6)
            ax.plot([r.energy_measured_uJ, r.energy_dense_uJ], [100 * r.best_test_acc] * 2,
                    color="#BBBBBB", linewidth=0.6, zorder=0)
    front = df[df["pareto_measured"]].sort_values("energy_measured_uJ")
    if len(front):
        ax.step(front["energy_measured_uJ"], 100 * front["best_test_acc"], where="post",
                color="#D55E00", linewidth=1.2, label="Pareto front (measured)")
    base = table.df[table.df["setting"] == "FP32 baseline"]
    fp_note = ""
    if len(base) and not math.isnan(base["best_test_acc"].iloc[0]):
        acc = 100 * base["best_test_acc"].iloc[0]
        ax.axhline(acc, color="#555555", linestyle="--", linewidth=0.8,
                   label=f"FP32 baseline {acc:.2f}%")
        fp_note = (f" The dashed line is the FP32 baseline's accuracy ({acc:.2f}%; its energy, "
                   f"{base['energy_measured_uJ'].iloc[0]:.1f} µJ measured, is off the axis).")
    ax.set_xlabel("energy per inference (µJ): filled = measured activations, hollow = dense")
    ax.set_ylabel("best test top-1 accuracy (%)")
    ax.grid(linewidth=0.3, alpha=0.6)
    ax.legend(frameon=False, fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    on_front = ", ".join(front["setting"]) or "none"
    caption = (f"Accuracy against energy per inference for every setting: filled markers use "
               f"the measured activations (zero inputs skipped), hollow markers of the same "
               f"shape and colour the dense-activation assumption; the grey segment joins the two. The "
               f"step line is the Pareto front on measured energy: {on_front}.{fp_note} "
               f"{assumptions}").strip()
    return F.FigureSpec("pareto", fig, caption)


def _line_styles(n: int):
    colors = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
              "#F0E442"]
    styles = ["-", "--", "-.", ":"]
    return [(colors[i % len(colors)], styles[(i // len(colors)) % len(styles)],
             _MARKERS[i % len(_MARKERS)]) for i in range(n)]


@F._styled
def convergence_figure(entries: Sequence[SweepEntry]) -> F.FigureSpec | None:
    if not any(e.history for e in entries):
        return None
    fig = F._new_figure((7.0, 3.0))
    ax_acc, ax_zero = fig.subplots(1, 2, sharex=True)
    for e, (c, ls, mk) in zip(entries, _line_styles(len(entries))):
        ep = F._epochs(e.history)
        acc = np.array([_num(h.get("test_acc")) for h in e.history])
        kw = dict(color=c, linestyle=ls, marker=mk, markersize=2.5, linewidth=1.0, label=e.label)
        ax_acc.plot(ep, 100 * acc, **kw)
        ax_zero.plot(ep, _mean_layer_series(e.history, "frac_zero"), **kw)
    ax_acc.set_ylabel("test top-1 accuracy (%)")
    ax_zero.set_ylabel("zero-weight fraction (mean over ternary layers)")
    for ax, title in ((ax_acc, "convergence"), (ax_zero, "sparsity evolution")):
        ax.set_xlabel("epoch")
        ax.set_title(title, loc="left")
        ax.grid(linewidth=0.3, alpha=0.6)
    ax_acc.legend(frameon=False, fontsize=6)
    caption = ("Test accuracy (left) and the mean fraction of zero weights over the ternary "
               "layers (right) after each epoch, per setting. Settings with the sparsity rule "
               "hold their fraction fixed by construction; threshold-rule settings let it move "
               "with the latent weights.")
    return F.FigureSpec("convergence", fig, caption)


@F._styled
def ablation_gradient_figure(pairs: Sequence[tuple[SweepEntry, SweepEntry]]) -> F.FigureSpec | None:
    entries = [e for pair in pairs for e in pair]
    if not entries or not any(e.history for e in entries):
        return None
    fig = F._new_figure((7.0, 2.8 * len(pairs)))
    axes = np.atleast_2d(fig.subplots(len(pairs), 2, squeeze=False))
    for row, (on, off) in enumerate(pairs):
        for col, e in enumerate((on, off)):
            ax = axes[row, col]
            ep = F._epochs(e.history)
            for region in ("pos", "zero", "neg"):
                applied = _mean_layer_series(e.history, f"grad_abs_mean_scaled_{region}")
                ax.plot(ep, applied, color=F.COLORS[region], marker=F.MARKERS[region],
                        markersize=3, linewidth=1.0, label=F.REGION_LABELS[region])
            ax.set_yscale("log")
            ax.set_title(f"{e.label}: scaling {'on' if e.grad_scaling else 'off'}", loc="left")
            ax.set_xlabel("epoch")
            ax.set_ylabel("mean |gradient applied to w|")
            ax.grid(linewidth=0.3, alpha=0.6)
            ax.legend(frameon=False, fontsize=6)
    caption = ("Mean magnitude of the gradient applied to the latent weights in each region "
               "(+, 0, −), averaged over the ternary layers and the sampled steps of each epoch, "
               "with TTQ's Wp / 1 / Wn scaling (left) and plain straight-through gradients "
               "(right), log scale. With scaling, the ± regions receive Wp- and Wn-times "
               "the zero region's rate; without, all regions move at the same rate.")
    return F.FigureSpec("ablation_gradients", fig, caption)


# ----------------------------------------------------------------------------- render

def render_comparison(entries: Sequence[SweepEntry], out_dir: str | os.PathLike, *,
                      baseline: Analysis | None = None, title: str | None = None,
                      data_description: str = "", recipe: str = "",
                      jpeg_note: str | None = None) -> Path:
    """Write the comparison report into ``out_dir`` (replaced atomically); return its
    report.html."""
    if not entries:
        raise ValueError("render_comparison needs at least one setting")
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise ValueError(f"setting labels must be unique, got {labels}")
    return build_atomically(out_dir, lambda folder: _write(
        entries, folder, baseline, title, data_description, recipe, jpeg_note)) / "report.html"


def _write(entries, folder: Path, baseline, title, data_description, recipe, jpeg_note) -> None:
    table = comparison_table(entries, baseline)
    T.export(table, folder)
    ranking, ranking_sentences = _method_ranking(entries)
    if ranking is not None:
        T.export(ranking, folder)
    pairs = ablation_pairs(entries)
    abl = ablation_table(pairs) if pairs else None
    if abl is not None:
        T.export(abl, folder)
    cost = T.cost_model_table(entries[0].analysis)
    T.export(cost, folder)
    figures = []
    assumptions = T._assumptions([e.analysis for e in entries])
    for spec in (pareto_figure(table, assumptions), convergence_figure(entries)):
        if spec is not None:
            figures.append(figure_item(spec, folder, len(figures) + 1))
    abl_figures = []
    if pairs:
        spec = ablation_gradient_figure(pairs)
        if spec is not None:
            abl_figures.append(figure_item(spec, folder, len(figures) + 1))
    settings = []
    for e in entries:
        d = T.dense_assumption(e.analysis)
        plan = None
        if e.plan:
            det = e.plan.get("details", {})
            after = e.analysis.network.energy.ttq_dense.total_uJ
            budget_uJ = det.get("budget_uJ")
            plan = {"method": e.plan.get("method"), "budget": det.get("budget"),
                    "budget_uJ": budget_uJ, "after_uJ": after,
                    "over_budget": (after is not None and budget_uJ is not None
                                    and after > budget_uJ),
                    "predicted_uJ": det.get("predicted_uJ"), "reference_uJ": det.get("reference_uJ"),
                    "sensitivity": det.get("sensitivity"),
                    "layers": list(e.plan.get("layers", {}).items())}
        settings.append({"label": e.label, "slug": slugify(e.label), "description": e.description,
                         "dense": d, "run": T.run_description(e.analysis), "plan": plan})
    front = table.df[table.df["pareto_measured"].astype(bool)]
    best = table.df[table.df["setting"] != "FP32 baseline"].sort_values(
        "best_test_acc", ascending=False).iloc[0]
    context = {
        "title": title or (f"{'Methods' if ranking is not None else 'TTQ settings'} compared: "
                           f"{entries[0].analysis.meta.get('arch', '')}"),
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__, "torch_version": str(torch.__version__),
        "table": T.to_html(table), "ablation": T.to_html(abl) if abl is not None else None,
        "figures": figures, "ablation_figures": abl_figures, "settings": settings,
        "findings": findings(entries, table) + ranking_sentences,
        "method_ranking": T.to_html(ranking) if ranking is not None else None,
        "front": list(front["setting"]), "best": {"label": best["setting"],
                                                  "acc": best["best_test_acc"]},
        "baseline": baseline.network if baseline is not None else None,
        "cost_model": T.to_html(cost), "data": {"description": data_description,
                                                "jpeg_note": jpeg_note},
        "recipe": recipe, "conventions": entries[0].analysis.meta.get("conventions", {}),
    }
    html = environment().get_template("comparison.html.j2").render(**context)
    atomic_write_text(folder / "report.html", html)
    dump = {"format": "ttq-sweep", "settings": [
        {"label": e.label, "description": e.description, "grad_scaling": e.grad_scaling,
         "plan": e.plan, "history": e.history, "analysis": e.analysis.to_dict(), **e.extra}
        for e in entries], "baseline": baseline.to_dict() if baseline is not None else None}
    atomic_write_text(folder / "sweep.json", json.dumps(dump, indent=1, allow_nan=False,
                                                        default=_json_default))


def _method_ranking(entries) -> tuple[T.Table | None, list[str]]:
    """The method axis (``method=`` settings, two methods or more): the ranking across
    hardware scenarios and its sentences (:mod:`reports.method_ranking`)."""
    from .method_ranking import method_points, ranking_findings, ranking_table, ttq_finding
    points = method_points(entries)
    if len(points) < 2:
        return None, []
    raw = entries[0].analysis.meta.get("energy_model")
    if not isinstance(raw, dict):
        return None, []
    table = ranking_table(points, raw)
    sentences = ranking_findings(points, table)
    answer = ttq_finding(points, table, int(entries[0].analysis.meta.get("images") or 0))
    return table, ([answer] if answer else []) + sentences


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")
