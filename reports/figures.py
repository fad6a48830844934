"""Figures for reports and papers, drawn from analysis results and training history.

Every function takes data (an :class:`ttq_analysis.analysis.Analysis`, or a plain
history list as stored in a checkpoint: see :mod:`ttq_core.train.history`) and returns a
:class:`FigureSpec` — a file stem, a Matplotlib ``Figure`` and a caption generated from
the data (what is shown, for which model and data, in which units, under which
assumptions) — or ``None`` when the data it needs is absent (no history, no ternary
layer, no measured activations).

Figures are built as ``matplotlib.figure.Figure(layout="constrained")`` on the Agg
canvas; pyplot and its global figure registry are never used, so nothing needs closing
and nothing leaks between reports.  The +/0/− weight fractions and the before/after
gradient series are told apart by hatches, markers and line styles as well as colour, so
the figures stay readable in greyscale print.

``to_svg(fig)`` gives an ``<svg>`` string to inline in HTML (text kept as text, no
external references but the SVG/xlink namespaces); ``save(spec, folder)`` writes
``<name>.svg`` and ``<name>.png`` (150 dpi).  ``all_figures(analysis)`` returns those that
apply, in report order.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "FigureSpec",
    "energy_by_layer",
    "sparsity_by_layer",
    "act_sparsity_distribution",
    "sparsity_evolution",
    "scales_evolution",
    "training_curves",
    "gradient_multipliers",
    "all_figures",
    "to_svg",
    "save",
]

PNG_DPI = 150

# Okabe–Ito colours (colour-blind safe); hatches/markers carry the same distinction.
COLORS = {"pos": "#0072B2", "zero": "#BBBBBB", "neg": "#D55E00",
          "compute": "#0072B2", "memory": "#E69F00",
          "weight": "#555555", "act": "#009E73", "train": "#0072B2", "test": "#D55E00"}
HATCHES = {"pos": "///", "zero": "", "neg": "\\\\\\", "compute": "", "memory": "///",
           "weight": "///", "act": ""}
MARKERS = {"pos": "^", "zero": "o", "neg": "v"}
REGION_LABELS = {"pos": "+ (w > Δ)", "zero": "0 (|w| ≤ Δ)", "neg": "− (w < −Δ)"}
ENERGY_UNITS = ((1e6, "µJ"), (1e3, "nJ"), (1.0, "pJ"))  # pJ per unit, largest first

# Labels/markers/hatches use Unicode minus and Greek; DejaVu Sans (the default) has them.
_RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
       "xtick.labelsize": 7, "ytick.labelsize": 7, "hatch.linewidth": 0.6,
       "svg.fonttype": "none", "svg.hashsalt": "ttq-report"}


@dataclass
class FigureSpec:
    """A finished figure: ``name`` is the file stem, ``caption`` one generated paragraph."""

    name: str
    fig: Figure
    caption: str


# ----------------------------------------------------------------------- helpers
def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _styled(fn: Callable) -> Callable:
    """Run a figure builder under the module's rc settings (fonts are read at creation)."""
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)
    wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__ = fn.__name__, fn.__doc__, fn
    wrapper.__qualname__ = fn.__qualname__
    return wrapper


def _dataset(meta: dict | None) -> str | None:
    ds = ((meta or {}).get("checkpoint") or {}).get("dataset")
    if isinstance(ds, dict):
        ds = ds.get("name")
    return str(ds) if ds else None


def _model_phrase(meta: dict | None) -> str:
    """'resnet20 (cifar10)' or what of it is known."""
    meta = meta or {}
    arch = meta.get("arch") or "the model"
    ds = _dataset(meta)
    return f"{arch} ({ds})" if ds else str(arch)


def _images_phrase(meta: dict) -> str:
    ds = _dataset(meta)
    n = int(meta.get("images") or 0)
    return f"{n:,} {ds} images" if ds else f"{n:,} images"


def _energy_assumptions(meta: dict) -> str:
    em = (meta.get("energy_model") or {}).get("name", "an unnamed")
    mem = str(meta.get("memory", "sram")).upper()
    prec = str(meta.get("precision", "fp32")).upper()
    return (f"energy model '{em}', {prec} arithmetic on activations, every weight read once "
            f"per inference from {mem}; bias, batch norm, activation functions and activation "
            f"memory traffic not counted")


def _energy_unit(max_pj: float) -> tuple[float, str]:
    for factor, unit in ENERGY_UNITS:
        if max_pj >= factor:
            return factor, unit
    return 1.0, "pJ"


def _share(fraction: float) -> str:
    """A fraction as a percentage that never rounds a nonzero share to '0%'."""
    if 0 < fraction < 0.001:
        return "< 0.1%"
    return f"{fraction:.1%}"


def _is_ternary(analysis) -> bool:
    return "ternary" in analysis.layers and bool(analysis.layers["ternary"].any())


def _has_measured(analysis) -> bool:
    return int(analysis.meta.get("images") or 0) > 0 and "act_sparsity" in analysis.layers \
        and bool(analysis.layers["act_sparsity"].notna().any())


def _label_layers(ax, names: Sequence[str], x: np.ndarray) -> None:
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)


def _history_entries(history) -> list[dict]:
    return [h for h in (history or []) if isinstance(h, dict)]


def _epochs(entries: list[dict]) -> np.ndarray:
    return np.array([h.get("epoch", i + 1) for i, h in enumerate(entries)], dtype=float)


def _ternary_names(entries: list[dict]) -> list[str]:
    names: dict[str, None] = {}
    for h in entries:
        for n in (h.get("layers") or {}):
            names.setdefault(n, None)
    return list(names)


def _series(entries: list[dict], layer: str, key: str) -> np.ndarray:
    out = []
    for h in entries:
        v = ((h.get("layers") or {}).get(layer) or {}).get(key)
        out.append(np.nan if v is None else float(v))
    return np.array(out, dtype=float)


def _grid(n_panels: int, max_cols: int = 5) -> tuple[int, int]:
    cols = min(max_cols, n_panels)
    return math.ceil(n_panels / cols), cols


# ----------------------------------------------------------------------- analysis figures
@_styled
def energy_by_layer(analysis, scenario: str = "ttq_measured") -> FigureSpec | None:
    """Stacked bars per layer: compute and weight-memory energy (per inference of one image).

    ``scenario`` is one of ``ttq_measured``, ``ttq_dense``, ``fp32_measured``,
    ``fp32_dense``.  A ``ttq_*`` scenario on an FP network draws the ``fp32_*`` one; a
    measured scenario without measured counts (NaN) draws the dense one.  The caption
    says which was drawn.
    """
    df = analysis.layers
    meta = analysis.meta
    requested = scenario
    if scenario.startswith("ttq_") and not _is_ternary(analysis):
        scenario = "fp32_" + scenario[len("ttq_"):]

    def available(s: str) -> bool:
        cols = [f"{s}_compute_pJ", f"{s}_memory_pJ"]
        return all(c in df for c in cols) and not df[cols].isna().any().any()

    if not available(scenario) and scenario.endswith("_measured"):
        scenario = scenario[: -len("_measured")] + "_dense"
    if not available(scenario) or df.empty:
        return None
    compute = df[f"{scenario}_compute_pJ"].to_numpy(float)
    memory = df[f"{scenario}_memory_pJ"].to_numpy(float)
    factor, unit = _energy_unit(float(np.max(compute + memory)))
    x = np.arange(len(df))

    fig = _new_figure((max(6.0, 0.34 * len(df) + 1.5), 3.4))
    ax = fig.add_subplot()
    ax.bar(x, compute / factor, 0.75, color=COLORS["compute"], edgecolor="black",
           linewidth=0.5, hatch=HATCHES["compute"], label="compute")
    ax.bar(x, memory / factor, 0.75, bottom=compute / factor, color=COLORS["memory"],
           edgecolor="black", linewidth=0.5, hatch=HATCHES["memory"], label="weight memory")
    _label_layers(ax, df["layer"].tolist(), x)
    ax.set_ylabel(f"energy per image ({unit})")
    mode = "measured activations (zero inputs skipped)" if scenario.endswith("_measured") \
        else "dense activations (every MAC computed)"
    net = "ternary network" if scenario.startswith("ttq_") else "FP32 network"
    ax.set_title(f"{meta.get('arch', '')}: energy per layer, {net}, {mode}", loc="left")
    fig.legend(loc="outside upper right", ncols=2, frameon=False)
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)

    total_uj = float((compute + memory).sum()) / 1e6
    mem_share = float(memory.sum() / (compute + memory).sum())
    substitution = "" if scenario == requested else \
        f" (scenario {scenario} drawn because {requested} does not apply to this analysis)"
    measured_on = f", activation sparsity measured on {_images_phrase(meta)}" \
        if scenario.endswith("_measured") else ""
    caption = (f"Energy per inference of one image for each conv/linear layer of "
               f"{_model_phrase(meta)}, scenario {scenario}{substitution}: {net} with {mode}"
               f"{measured_on}. Bars stack arithmetic (compute) and weight-memory energy in "
               f"{unit}; the network total is {total_uj:.3g} µJ, {_share(mem_share)} of it "
               f"weight memory. Assumptions: {_energy_assumptions(meta)}.")
    return FigureSpec("energy_by_layer", fig, caption)


@_styled
def sparsity_by_layer(analysis) -> FigureSpec | None:
    """Per layer: fraction of zero weights and measured fraction of zero inputs.

    Activation bars carry the 5th–95th percentile over images as error bars.  Without
    measured activations only weight sparsity is drawn (``None`` for an FP network).
    """
    df = analysis.layers
    meta = analysis.meta
    measured = _has_measured(analysis)
    if df.empty or (not measured and not _is_ternary(analysis)):
        return None
    x = np.arange(len(df))
    w = 0.4 if measured else 0.75
    fig = _new_figure((max(6.0, 0.34 * len(df) + 1.5), 3.4))
    ax = fig.add_subplot()
    ws = df["weight_sparsity"].to_numpy(float)
    ax.bar(x - (w / 2 if measured else 0), ws, w, color=COLORS["weight"], alpha=0.55,
           edgecolor="black", linewidth=0.5, hatch=HATCHES["weight"],
           label="weights: fraction zero")
    spread = ""
    if measured:
        act = df["act_sparsity"].to_numpy(float)
        yerr = None
        if {"act_sparsity_p05", "act_sparsity_p95"} <= set(df.columns):
            lo = df["act_sparsity_p05"].to_numpy(float)
            hi = df["act_sparsity_p95"].to_numpy(float)
            if not (np.isnan(lo).all() or np.isnan(hi).all()):
                yerr = np.vstack([np.clip(act - lo, 0, None), np.clip(hi - act, 0, None)])
                yerr = np.nan_to_num(yerr)
                spread = " Error bars span the 5th to 95th percentile over images."
        ax.bar(x + w / 2, act, w, color=COLORS["act"], edgecolor="black", linewidth=0.5,
               yerr=yerr, capsize=1.5, error_kw={"elinewidth": 0.7},
               label="input activations: fraction zero (mean over images)")
    _label_layers(ax, df["layer"].tolist(), x)
    ax.set_ylim(0, 1)
    ax.set_ylabel("sparsity (fraction of zeros)")
    ax.set_title(f"{meta.get('arch', '')}: weight and activation sparsity per layer", loc="left")
    fig.legend(loc="outside upper right", ncols=2, frameon=False)
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)

    parts = [f"Sparsity per conv/linear layer of {_model_phrase(meta)}, as a fraction of "
             f"zeros (0–1): hatched bars, the layer's weights"]
    if _is_ternary(analysis):
        net_ws = analysis.network.sparsity.weight_sparsity
        if net_ws is not None:
            parts[0] += f" (ternary layers overall: {net_ws:.1%} zero)"
    if measured:
        mean = analysis.network.sparsity.act_sparsity_mean
        parts.append(f"; plain bars, the layer's input activations measured on "
                     f"{_images_phrase(meta)} (mean over images"
                     + (f"; unweighted mean over layers {mean:.1%}" if mean is not None else "")
                     + ")." + spread + " The first layer's input is the normalised image, "
                     "hence dense.")
    else:
        parts.append(". Activation sparsity was not measured (no data analysed, 0 images).")
    return FigureSpec("sparsity_by_layer", fig, "".join(parts))


@_styled
def act_sparsity_distribution(analysis, layers: Sequence[str] | None = None,
                              max_layers: int = 3) -> FigureSpec | None:
    """Histogram over images of per-image activation sparsity (mean over layers).

    ``layers`` picks layers drawn as extra step lines; by default up to ``max_layers``
    spanning the range of mean sparsity (lowest, median, highest, first layer excluded).
    """
    h = analysis.histograms or {}
    edges, counts = h.get("bin_edges"), h.get("network_mean")
    if not edges or not counts or int(analysis.meta.get("images") or 0) == 0:
        return None
    meta = analysis.meta
    edges = np.asarray(edges, float)
    counts = np.asarray(counts, float)
    per_layer = h.get("layers") or {}
    if layers is None:
        df = analysis.layers
        cand = df[df["layer"].isin(per_layer.keys())].iloc[1:] if len(df) > 1 else df
        cand = cand.dropna(subset=["act_sparsity"]).sort_values("act_sparsity")
        if len(cand) and max_layers > 0:
            idx = sorted(set(np.linspace(0, len(cand) - 1, min(max_layers, len(cand)))
                             .round().astype(int)))
            layers = cand["layer"].iloc[idx].tolist()
        else:
            layers = []
    layers = [n for n in layers if n in per_layer]

    fig = _new_figure((6.0, 3.2))
    ax = fig.add_subplot()
    ax.stairs(counts, edges, fill=True, color=COLORS["act"], alpha=0.45, edgecolor="black",
              linewidth=0.6, label="network (mean over layers per image)")
    styles = ["--", ":", "-."]
    for i, name in enumerate(layers):
        ax.stairs(np.asarray(per_layer[name], float), edges, color="black", linewidth=1.0,
                  linestyle=styles[i % len(styles)], label=name)
    centres = 0.5 * (edges[:-1] + edges[1:])
    mean = float((centres * counts).sum() / counts.sum()) if counts.sum() else math.nan
    occupied = np.nonzero(counts)[0]
    lo = min([occupied[0]] + [np.nonzero(per_layer[n])[0][0] for n in layers if any(per_layer[n])])
    hi = max([occupied[-1]] + [np.nonzero(per_layer[n])[0][-1] for n in layers if any(per_layer[n])])
    ax.set_xlim(edges[max(lo - 2, 0)], edges[min(hi + 3, len(edges) - 1)])
    ax.set_xlabel("activation sparsity of one image (fraction of zero inputs)")
    ax.set_ylabel("images per bin")
    ax.set_title(f"{meta.get('arch', '')}: distribution of per-image activation sparsity",
                 loc="left")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    width = edges[1] - edges[0]
    caption = (f"Distribution over {_images_phrase(meta)} of the fraction of zero inputs seen "
               f"by the conv/linear layers of {_model_phrase(meta)}: the filled histogram "
               f"bins, per image, the unweighted mean over all {len(per_layer)} layers "
               f"(mean ≈ {mean:.1%}, from bin centres); "
               + (f"step lines show single layers ({', '.join(layers)}). " if layers else "")
               + f"Bins are {width:.2g} wide; y counts images. Sparsity is exact zeros in each "
               f"layer's input, the quantity that zero-skipping hardware could exploit.")
    return FigureSpec("act_sparsity_distribution", fig, caption)


# ----------------------------------------------------------------------- history figures
def _history_phrase(meta: dict | None, entries: list[dict]) -> str:
    return f"{_model_phrase(meta)} over {len(entries)} training epochs"


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
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
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
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction", fontsize=7)
    for ax in axes[-1, :]:
        ax.set_xlabel("epoch", fontsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False,
               title="ternary weight value")
    last = {k: summary[k][-1] for k in keys}
    caption = (f"Fractions of ternary weights at +Wp, 0 and −Wn (stacked, summing to 1) for "
               f"each of the {len(names)} ternary layers of {_history_phrase(meta, entries)}, "
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
    """Wp and Wn of each ternary layer over epochs (two panels, colour = layer depth)."""
    entries = _history_entries(history)
    names = [n for n in _ternary_names(entries)
             if not (np.isnan(_series(entries, n, "wp")).all()
                     and np.isnan(_series(entries, n, "wn")).all())]
    if not entries or not names:
        return None
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


@_styled
def gradient_multipliers(history, meta: dict | None = None) -> FigureSpec | None:
    """Mean |∂L/∂w| per weight region before and after the Wp/1/Wn scaling (log y).

    Left: each ternary layer at the last epoch with gradient statistics.  Right: the
    median over layers per epoch.  Missing (``None``) statistics are skipped.
    """
    entries = _history_entries(history)
    names = _ternary_names(entries)
    keys = ("pos", "zero", "neg")
    if not entries or not names:
        return None

    def has_grads(h):
        return any((h.get("layers") or {}).get(n, {}).get(f"grad_abs_mean_{k}") is not None
                   for n in names for k in keys)

    with_grads = [i for i, h in enumerate(entries) if has_grads(h)]
    if not with_grads:
        return None
    last = entries[with_grads[-1]]
    fig = _new_figure((9.0, 3.6))
    ax_l, ax_e = fig.subplots(1, 2, width_ratios=[2.2, 1])
    x = np.arange(len(names))
    offsets = {"pos": -0.22, "zero": 0.0, "neg": 0.22}

    def val(h, n, key):
        v = ((h.get("layers") or {}).get(n) or {}).get(key)
        return np.nan if v is None else float(v)

    for k in keys:
        before = np.array([val(last, n, f"grad_abs_mean_{k}") for n in names])
        after = np.array([val(last, n, f"grad_abs_mean_scaled_{k}") for n in names])
        xs = x + offsets[k]
        ax_l.vlines(xs, np.fmin(before, after), np.fmax(before, after), color=COLORS[k],
                    linewidth=0.8)
        ax_l.plot(xs, before, linestyle="none", marker=MARKERS[k], markersize=4.5,
                  markerfacecolor="white", markeredgecolor=COLORS[k],
                  label=f"{REGION_LABELS[k]}, before: |∂L/∂w_t|")
        ax_l.plot(xs, after, linestyle="none", marker=MARKERS[k], markersize=4.5,
                  color=COLORS[k], markeredgecolor="black", markeredgewidth=0.4,
                  label=f"{REGION_LABELS[k]}, after: |∂L/∂w|")
    ax_l.set_yscale("log")
    _label_layers(ax_l, names, x)
    ax_l.set_ylabel("mean |gradient| per latent weight")
    ax_l.set_title(f"per layer, epoch {last.get('epoch', with_grads[-1] + 1)}", loc="left")
    ax_l.grid(axis="y", which="major", linewidth=0.3, alpha=0.6)

    sub = [entries[i] for i in with_grads]
    ep = _epochs(entries)[with_grads]
    for k in keys:
        for scaled, ls, face in ((False, "--", "white"), (True, "-", COLORS[k])):
            key = f"grad_abs_mean_{'scaled_' if scaled else ''}{k}"
            m = np.array([[val(h, n, key) for n in names] for h in sub])
            with warnings.catch_warnings():  # all-NaN epochs: median NaN, skipped by plot
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(m, axis=1)
            if np.isnan(med).all():
                continue
            ax_e.plot(ep, med, color=COLORS[k], linestyle=ls, marker=MARKERS[k],
                      markersize=3, markerfacecolor=face, markeredgecolor=COLORS[k],
                      linewidth=0.9)
    ax_e.set_yscale("log")
    ax_e.set_xlabel("epoch")
    ax_e.set_title("median over layers", loc="left")
    ax_e.grid(which="major", linewidth=0.3, alpha=0.6)
    handles, labels = ax_l.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False,
               fontsize=6)

    ratios = {}
    for k in keys:
        r = [val(last, n, f"grad_abs_mean_scaled_{k}") / val(last, n, f"grad_abs_mean_{k}")
             for n in names]
        r = np.array([v for v in r if np.isfinite(v)])
        ratios[k] = float(np.median(r)) if r.size else math.nan
    ratio_txt = ", ".join(f"{k} ×{ratios[k]:.3g}" for k in keys if not math.isnan(ratios[k]))
    steps = {i: _zero_to_pm_step_ratio(entries[i], names, val) for i in (with_grads[0], with_grads[-1])}
    step_txt = " and ".join(f"{steps[i]:.3g} at epoch {entries[i].get('epoch', i + 1)}"
                            for i in dict.fromkeys(steps) if not math.isnan(steps[i]))
    step_sentence = (f" Effective step per latent weight (multiplier × gradient, the quantity the "
                     f"LR multiplies), zero region : ± regions, median over layers: {step_txt}; "
                     f"near 1 the zero band and the ± regions move at comparable speed, ≫ 1 "
                     f"(Wp, Wn ≪ 1, e.g. least-squares initial scales under batch norm) the zero "
                     f"region's weights take the larger steps, the setting in which weight "
                     f"sparsity was measured to fall (README, 'TTQ as implemented')."
                     if step_txt else "")
    caption = (f"Learning-rate-multiplier evidence for {_history_phrase(meta, entries)}: mean "
               f"absolute gradient per latent weight in each region (+: w > Δ, 0: |w| ≤ Δ, "
               f"−: w < −Δ), before scaling (open markers, dashed: |∂L/∂w_t|, the gradient "
               f"reaching the ternary weight) and after (filled, solid: |∂L/∂w| = Wp, 1 or Wn "
               f"times it, the gradient applied to the latent weight), log scale, in loss units "
               f"per weight unit. Left: each ternary layer at epoch "
               f"{last.get('epoch', with_grads[-1] + 1)}; right: median over layers per epoch. "
               f"Statistics are averaged over the steps sampled in each epoch; regions empty at "
               f"every sampled step are omitted. Median ratio after/before at that epoch: "
               f"{ratio_txt}.{step_sentence}")
    return FigureSpec("gradient_multipliers", fig, caption)


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


# ----------------------------------------------------------------------- collection & output
def all_figures(analysis) -> list[FigureSpec]:
    """Every figure that applies to ``analysis``, in report order."""
    history = ((analysis.meta or {}).get("checkpoint") or {}).get("history")
    meta = analysis.meta
    specs = [
        energy_by_layer(analysis),
        sparsity_by_layer(analysis),
        act_sparsity_distribution(analysis),
        training_curves(history, meta),
        sparsity_evolution(history, meta),
        scales_evolution(history, meta),
        gradient_multipliers(history, meta),
    ]
    return [s for s in specs if s is not None]


_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*)*", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def to_svg(fig: Figure, id_prefix: str | None = None) -> str:
    """The figure as an ``<svg ...>`` element to inline in HTML.

    Text stays text (``svg.fonttype = none``), ids are deterministic, and the XML prolog,
    doctype and metadata block (which carry external URLs) are removed.  Several SVGs
    inlined in one page share one id space: pass a distinct ``id_prefix`` per figure
    (e.g. the spec's name) to keep their clip paths and hatch patterns apart.
    """
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "ttq-report"}):
        fig.savefig(buf, format="svg",
                    metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = _METADATA.sub("", _PROLOG.sub("", buf.getvalue()))
    if id_prefix:
        if not re.fullmatch(r"[A-Za-z][\w-]*", id_prefix):
            raise ValueError(f"id_prefix must be a letter then letters, digits, _ or -; got "
                             f"{id_prefix!r}")
        p = id_prefix + "-"
        text = re.sub(r'\bid="', f'id="{p}', text)
        text = text.replace("url(#", f"url(#{p}").replace('href="#', f'href="#{p}')
    return text.strip() + "\n"


def save(spec: FigureSpec, folder: str | Path) -> list[Path]:
    """Write ``<name>.svg`` and ``<name>.png`` (150 dpi) into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    svg = folder / f"{spec.name}.svg"
    png = folder / f"{spec.name}.png"
    svg.write_text(to_svg(spec.fig), encoding="utf-8")
    spec.fig.savefig(png, format="png", dpi=PNG_DPI,
                     metadata={"Software": None})
    return [svg, png]
