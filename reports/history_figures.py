"""Figures of a checkpoint's training history: zero-weight fractions per layer, Wp/Wn,
loss and accuracy, and the latent-gradient multipliers (per-region effective steps).
Shared style and history accessors: :mod:`reports.figure_style`."""

from __future__ import annotations

import math

import warnings

import matplotlib
import numpy as np

from .figure_style import (COLORS, FigureSpec, HATCHES, MARKERS, REGION_LABELS, _epochs,
                           _grid, _history_entries, _label_layers, _model_phrase,
                           _new_figure, _series, _styled, _ternary_names)

# ----------------------------------------------------------------------- history figures
def _history_phrase(meta: dict | None, entries: list[dict]) -> str:
    return f"{_model_phrase(meta)} over {len(entries)} training epochs"


def _quantizer(meta: dict | None) -> str:
    """The checkpoint's quantizer (``quant["method"]``; records without it are TTQ)."""
    quant = ((meta or {}).get("checkpoint") or {}).get("quant") or {}
    return str(quant.get("method") or "ttq")


# What a history's "wp" (= "wn") holds for the other quantizers (ttq_core.train.history).
_SCALE_MEANING = {
    "twn": "TWN's per-layer scale α (the mean |w| of the weights above Δ = 0.7·mean|w|)",
    "bwn": "BWN's scale α_c (mean |w| of an output channel), averaged over output channels",
    "int4": "the learned LSQ step s_c (the spacing of the integer grid), averaged over "
            "output channels",
    "int8": "the learned LSQ step s_c (the spacing of the integer grid), averaged over "
            "output channels",
}
# How the gradient applied to the latent weight relates to the one reaching the quantized
# weight, per quantizer (the "after" of the gradient figure).
_APPLIED = {
    "ttq": "Wp, 1 or Wn times it",
    "twn": "equal to it: TWN passes it straight through",
    "bwn": "(1/n + α_c·1{|w| ≤ 1}) times it, BWN's rule",
    "int4": "equal to it, zero where a weight is clipped at ±7 steps",
    "int8": "equal to it, zero where a weight is clipped at ±127 steps",
}


@_styled
def sparsity_evolution(history, meta: dict | None = None, max_cols: int = 5) -> FigureSpec | None:
    """Small multiples of the +/0/− weight fractions of each ternary layer over epochs.

    The last panel is the unweighted mean over layers.  ``meta`` (``analysis.meta``)
    only feeds the caption.  ``None`` without history or ternary layers.
    """
    entries = _history_entries(history)
    names = _ternary_names(entries)
    if not entries or not names:
        return None
    ep = _epochs(entries)
    keys = ("pos", "zero", "neg")
    data = {n: {k: _series(entries, n, f"frac_{k}") for k in keys} for n in names}
    summary = {k: np.nanmean(np.vstack([data[n][k] for n in names]), axis=0) for k in keys}
    panels = [*names, "mean over layers"]
    rows, cols = _grid(len(panels), max_cols)
    fig = _new_figure((1.75 * cols + 0.4, 1.35 * rows + 0.6))
    # every panel gets the same limits below, so the axes are not shared: sharing costs
    # each limit change and each draw a pass over all the panels (quadratic in their
    # number); label_outer() hides the inner tick labels as sharing would
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, panels):
        series = summary if name == "mean over layers" else data[name]
        bottom = np.zeros_like(ep)
        for k in keys:
            top = bottom + np.nan_to_num(series[k])
            ax.fill_between(ep, bottom, top, color=COLORS[k], hatch=HATCHES[k], alpha=0.8,
                            edgecolor="white" if k != "zero" else "#666666", linewidth=0,
                            label=REGION_LABELS[k], step=None)
            bottom = top
        ax.set_title(name, fontsize=7, fontweight="bold" if name == "mean over layers" else None)
        ax.set_ylim(0, 1)
        if ep[-1] > ep[0]:  # one epoch: let Matplotlib pad the single point
            ax.set_xlim(ep[0], ep[-1])
        ax.tick_params(labelsize=6)
        ax.label_outer()
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction", fontsize=7)
    for ax in axes[-1, :]:
        ax.set_xlabel("epoch", fontsize=7)
    method = _quantizer(meta)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False,
               title="ternary weight value" if method == "ttq" else
               f"{method} weight: sign of the quantized value")
    last = {k: summary[k][-1] for k in keys}
    what = ("Fractions of ternary weights at +Wp, 0 and −Wn" if method == "ttq" else
            f"Fractions of {method}-quantized weights above, at and below zero")
    kind = "ternary" if method == "ttq" else f"{method}-quantized"
    caption = (f"{what} (stacked, summing to 1) for "
               f"each of the {len(names)} {kind} layers of {_history_phrase(meta, entries)}, "
               f"measured on the weights at the end of each epoch; the last panel is the "
               f"unweighted mean over layers (final epoch: {last['pos']:.1%} +, "
               f"{last['zero']:.1%} 0, {last['neg']:.1%} −). Hatching marks +(///) and "
               f"−(\\\\\\); 0 is plain grey.")
    return FigureSpec("sparsity_evolution", fig, caption)


def _layer_colors(n: int):
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(v) for v in np.linspace(0.0, 0.9, max(n, 1))]


@_styled
def scales_evolution(history, meta: dict | None = None) -> FigureSpec | None:
    """Wp and Wn of each ternary layer over epochs (two panels, colour = layer depth);
    for the other quantizers (``meta``'s checkpoint record) their one scale, one panel."""
    entries = _history_entries(history)
    names = [n for n in _ternary_names(entries)
             if not (np.isnan(_series(entries, n, "wp")).all()
                     and np.isnan(_series(entries, n, "wn")).all())]
    if not entries or not names:
        return None
    if _quantizer(meta) != "ttq":
        return _scale_evolution(entries, names, meta, _quantizer(meta))
    ep = _epochs(entries)
    fig = _new_figure((7.0, 3.3))
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    colors = _layer_colors(len(names))
    styles = ["-", "--", ":"]
    for ax, key, label in zip(axes, ("wp", "wn"), ("Wp (positive scale)", "Wn (negative scale)")):
        for i, (name, c) in enumerate(zip(names, colors)):
            ax.plot(ep, _series(entries, name, key), color=c, linewidth=1.0,
                    linestyle=styles[i % len(styles)], label=name)
        ax.set_title(label, loc="left")
        ax.set_xlabel("epoch")
        ax.grid(linewidth=0.3, alpha=0.6)
    axes[0].set_ylabel("scale (weight units)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=6, frameon=False,
               title="layer (dark = early)", title_fontsize=6)
    wp_last = np.array([_series(entries, n, "wp")[-1] for n in names])
    wn_last = np.array([_series(entries, n, "wn")[-1] for n in names])
    negative = int(np.nansum(wp_last <= 0) + np.nansum(wn_last <= 0))
    caption = (f"Trained scales Wp and Wn (in the units of the layer's weights) of the "
               f"{len(names)} ternary layers of {_history_phrase(meta, entries)}, at the end "
               f"of each epoch; colour runs from early (dark) to late (light) layers, line "
               f"style cycles to separate neighbours. Final epoch: Wp {np.nanmin(wp_last):.3g}–"
               f"{np.nanmax(wp_last):.3g}, Wn {np.nanmin(wn_last):.3g}–{np.nanmax(wn_last):.3g}"
               + (f"; {negative} scale(s) ended ≤ 0." if negative else "; all scales stayed > 0."))
    return FigureSpec("scales_evolution", fig, caption)


def _scale_evolution(entries: list[dict], names: list[str], meta: dict | None,
                     method: str) -> FigureSpec:
    """One panel: the per-layer scale of a quantizer other than TTQ (its ``wp`` = ``wn``)."""
    ep = _epochs(entries)
    fig = _new_figure((5.0, 3.3))
    ax = fig.subplots(1, 1)
    styles = ["-", "--", ":"]
    for i, (name, c) in enumerate(zip(names, _layer_colors(len(names)))):
        ax.plot(ep, _series(entries, name, "wp"), color=c, linewidth=1.0,
                linestyle=styles[i % len(styles)], label=name)
    ax.set_title(f"{method} scale per layer", loc="left")
    ax.set_xlabel("epoch")
    ax.set_ylabel("scale (weight units)")
    ax.grid(linewidth=0.3, alpha=0.6)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=6, frameon=False,
               title="layer (dark = early)", title_fontsize=6)
    last = np.array([_series(entries, n, "wp")[-1] for n in names])
    meaning = _SCALE_MEANING.get(method, f"the scale {method} records")
    caption = (f"Scale of each of the {len(names)} {method}-quantized layers of "
               f"{_history_phrase(meta, entries)}: {meaning}, in the units of the layer's "
               f"weights, at the end of each epoch; colour runs from early (dark) to late "
               f"(light) layers. Final epoch: {np.nanmin(last):.3g}–{np.nanmax(last):.3g}.")
    return FigureSpec("scales_evolution", fig, caption)


@_styled
def training_curves(history, meta: dict | None = None) -> FigureSpec | None:
    """Loss (nats per image) and accuracy (%) on the training and test sets over epochs."""
    entries = _history_entries(history)
    if not entries:
        return None
    ep = _epochs(entries)

    def col(key):
        return np.array([np.nan if h.get(key) is None else float(h[key]) for h in entries])

    series = {k: col(k) for k in ("train_loss", "test_loss", "train_acc", "test_acc")}
    if all(np.isnan(v).all() for v in series.values()):
        return None
    fig = _new_figure((7.0, 3.0))
    ax_loss, ax_acc = fig.subplots(1, 2, sharex=True)
    marker = "o" if len(ep) <= 60 else None
    for split, ls, mk in (("train", "-", marker), ("test", "--", "s" if marker else None)):
        kw = dict(color=COLORS[split], linestyle=ls, marker=mk, markersize=2.5, linewidth=1.1,
                  label=split)
        if not np.isnan(series[f"{split}_loss"]).all():
            ax_loss.plot(ep, series[f"{split}_loss"], **kw)
        if not np.isnan(series[f"{split}_acc"]).all():
            ax_acc.plot(ep, 100 * series[f"{split}_acc"], **kw)
    ax_loss.set_ylabel("cross-entropy loss (nats per image)")
    ax_acc.set_ylabel("top-1 accuracy (%)")
    for ax, title in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(title, loc="left")
        ax.grid(linewidth=0.3, alpha=0.6)
        ax.legend(frameon=False)
    test_acc = series["test_acc"]
    best = ""
    if not np.isnan(test_acc).all():
        i = int(np.nanargmax(test_acc))
        best = (f" Best test accuracy {100 * test_acc[i]:.2f}% at epoch {ep[i]:g}; final "
                f"{100 * test_acc[-1]:.2f}%.")
        ax_acc.annotate(f"best {100 * test_acc[i]:.2f}%", (ep[i], 100 * test_acc[i]),
                        xytext=(0, -18), textcoords="offset points", ha="right", fontsize=6,
                        arrowprops={"arrowstyle": "-", "linewidth": 0.5})
    caption = (f"Training curves of {_history_phrase(meta, entries)}: mean cross-entropy loss "
               f"per image (nats, left) and top-1 accuracy (%, right) on the training set "
               f"(solid, averaged over the epoch's steps) and the test set (dashed, after the "
               f"epoch).{best}")
    return FigureSpec("training_curves", fig, caption)


_GRAD_REGIONS = ("pos", "zero", "neg")


def _grad_value(h: dict, n: str, key: str) -> float:
    """A layer's gradient statistic ``key`` in history entry ``h`` (NaN when absent)."""
    v = ((h.get("layers") or {}).get(n) or {}).get(key)
    return np.nan if v is None else float(v)


@_styled
def gradient_multipliers(history, meta: dict | None = None) -> FigureSpec | None:
    """Mean |∂L/∂w| per weight region before and after the Wp/1/Wn scaling (log y).

    Left: each ternary layer at the last epoch with gradient statistics.  Right: the
    median over layers per epoch.  Missing (``None``) statistics are skipped.
    """
    entries = _history_entries(history)
    names = _ternary_names(entries)
    if not entries or not names:
        return None
    with_grads = [i for i, h in enumerate(entries)
                  if any(not np.isnan(_grad_value(h, n, f"grad_abs_mean_{k}"))
                         for n in names for k in _GRAD_REGIONS)]
    if not with_grads:
        return None
    last = entries[with_grads[-1]]
    fig = _new_figure((9.0, 3.6))
    ax_l, ax_e = fig.subplots(1, 2, width_ratios=[2.2, 1])
    _grad_layer_panel(ax_l, last, names, with_grads[-1])
    _grad_median_panel(ax_e, entries, with_grads, names)
    handles, labels = ax_l.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False,
               fontsize=6)
    return FigureSpec("gradient_multipliers", fig,
                      _grad_caption(entries, with_grads, names, meta))


def _grad_layer_panel(ax, last: dict, names: list[str], last_index: int) -> None:
    """Per layer at the last epoch with statistics: before (open) and after (filled)."""
    x = np.arange(len(names))
    offsets = {"pos": -0.22, "zero": 0.0, "neg": 0.22}
    for k in _GRAD_REGIONS:
        before = np.array([_grad_value(last, n, f"grad_abs_mean_{k}") for n in names])
        after = np.array([_grad_value(last, n, f"grad_abs_mean_scaled_{k}") for n in names])
        xs = x + offsets[k]
        ax.vlines(xs, np.fmin(before, after), np.fmax(before, after), color=COLORS[k],
                  linewidth=0.8)
        ax.plot(xs, before, linestyle="none", marker=MARKERS[k], markersize=4.5,
                markerfacecolor="white", markeredgecolor=COLORS[k],
                label=f"{REGION_LABELS[k]}, before: |∂L/∂w_t|")
        ax.plot(xs, after, linestyle="none", marker=MARKERS[k], markersize=4.5,
                color=COLORS[k], markeredgecolor="black", markeredgewidth=0.4,
                label=f"{REGION_LABELS[k]}, after: |∂L/∂w|")
    ax.set_yscale("log")
    _label_layers(ax, names, x)
    ax.set_ylabel("mean |gradient| per latent weight")
    ax.set_title(f"per layer, epoch {last.get('epoch', last_index + 1)}", loc="left")
    ax.grid(axis="y", which="major", linewidth=0.3, alpha=0.6)


def _grad_median_panel(ax, entries: list[dict], with_grads: list[int], names: list[str]) -> None:
    """Median over layers per epoch, before (dashed) and after (solid) the scaling."""
    sub = [entries[i] for i in with_grads]
    ep = _epochs(entries)[with_grads]
    for k in _GRAD_REGIONS:
        for scaled, ls, face in ((False, "--", "white"), (True, "-", COLORS[k])):
            key = f"grad_abs_mean_{'scaled_' if scaled else ''}{k}"
            m = np.array([[_grad_value(h, n, key) for n in names] for h in sub])
            with warnings.catch_warnings():  # all-NaN epochs: median NaN, skipped by plot
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(m, axis=1)
            if np.isnan(med).all():
                continue
            ax.plot(ep, med, color=COLORS[k], linestyle=ls, marker=MARKERS[k],
                    markersize=3, markerfacecolor=face, markeredgecolor=COLORS[k],
                    linewidth=0.9)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("median over layers", loc="left")
    ax.grid(which="major", linewidth=0.3, alpha=0.6)


def _grad_caption(entries: list[dict], with_grads: list[int], names: list[str],
                  meta: dict | None) -> str:
    """The caption: what is drawn, the median after/before ratio per region and the
    zero : ± effective-step ratio at the first and last epoch with statistics."""
    last = entries[with_grads[-1]]
    val = _grad_value
    ratios = {}
    for k in _GRAD_REGIONS:
        r = [val(last, n, f"grad_abs_mean_scaled_{k}") / val(last, n, f"grad_abs_mean_{k}")
             for n in names]
        r = np.array([v for v in r if np.isfinite(v)])
        ratios[k] = float(np.median(r)) if r.size else math.nan
    ratio_txt = ", ".join(f"{k} ×{ratios[k]:.3g}" for k in _GRAD_REGIONS if not math.isnan(ratios[k]))
    steps = {i: _zero_to_pm_step_ratio(entries[i], names, val) for i in (with_grads[0], with_grads[-1])}
    step_txt = " and ".join(f"{steps[i]:.3g} at epoch {entries[i].get('epoch', i + 1)}"
                            for i in dict.fromkeys(steps) if not math.isnan(steps[i]))
    method = _quantizer(meta)
    step_sentence = (f" Effective step per latent weight (multiplier × gradient, the quantity the "
                     f"LR multiplies), zero region : ± regions, median over layers: {step_txt}; "
                     f"near 1 the zero band and the ± regions move at comparable speed, ≫ 1 "
                     f"(Wp, Wn ≪ 1, e.g. least-squares initial scales under batch norm) the zero "
                     f"region's weights take the larger steps, the setting in which weight "
                     f"sparsity was measured to fall (README, 'TTQ as implemented')."
                     if step_txt and method == "ttq" else "")
    regions = ("+: w > Δ, 0: |w| ≤ Δ, −: w < −Δ" if method == "ttq" else
               f"the sign of the {method}-quantized weight: +, 0, −")
    return (f"Learning-rate-multiplier evidence for {_history_phrase(meta, entries)}: mean "
            f"absolute gradient per latent weight in each region ({regions}), before "
            f"scaling (open markers, dashed: |∂L/∂w_t|, the gradient reaching the "
            f"{'ternary' if method == 'ttq' else 'quantized'} weight) and after (filled, "
            f"solid: |∂L/∂w| = {_APPLIED.get(method, 'what the method applies')}, the "
            f"gradient applied to the latent weight), log scale, in loss units "
            f"per weight unit. Left: each ternary layer at epoch "
            f"{last.get('epoch', with_grads[-1] + 1)}; right: median over layers per epoch. "
            f"Statistics are averaged over the steps sampled in each epoch; regions empty at "
            f"every sampled step are omitted. Median ratio after/before at that epoch: "
            f"{ratio_txt}.{step_sentence}")


def _zero_to_pm_step_ratio(entry, names, val) -> float:
    """Median over layers of |∂L/∂w| in the zero region over the mean of the ± regions'
    (the scaled, i.e. applied, gradients of one history entry); NaN when unavailable."""
    r = []
    for n in names:
        zero = val(entry, n, "grad_abs_mean_scaled_zero")
        sides = [v for v in (val(entry, n, "grad_abs_mean_scaled_pos"),
                             val(entry, n, "grad_abs_mean_scaled_neg")) if np.isfinite(v)]
        pm = sum(sides) / len(sides) if sides else math.nan
        if np.isfinite(zero) and np.isfinite(pm) and pm > 0:
            r.append(zero / pm)
    return float(np.median(r)) if r else math.nan


