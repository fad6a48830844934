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

The analysis figures and the output helpers are here; the history figures live in
:mod:`reports.history_figures` and the shared palette, :class:`FigureSpec` and helpers in
:mod:`reports.figure_style` (both re-exported here, so ``figures.sparsity_evolution`` and
``figures.FigureSpec`` keep working).

``to_svg(fig)`` gives an ``<svg>`` string to inline in HTML (text kept as text, no
external references but the SVG/xlink namespaces); ``save(spec, folder)`` writes
``<name>.svg`` and ``<name>.png`` (150 dpi).  ``all_figures(analysis)`` returns those that
apply, in report order.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine

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
    "with_id_prefix",
    "save",
]

# the shared style (re-exported: F.FigureSpec, F.COLORS, F._styled, ...) and the history
# figures (F.sparsity_evolution, ...) live in their own modules
from .figure_style import (COLORS, FigureSpec, HATCHES, PNG_DPI, _energy_assumptions,
                           _energy_unit, _has_measured, _images_phrase, _is_quantized, _is_ternary,
                           _label_layers, _model_phrase, _new_figure, _share, _styled)  # noqa: F401
from .figure_style import MARKERS, REGION_LABELS, _epochs  # noqa: F401,E402  (re-exported)
from .history_figures import (gradient_multipliers, scales_evolution,  # noqa: E402
                              sparsity_evolution, training_curves)

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
    if scenario.startswith("ttq_") and not _is_quantized(analysis):
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
    act_col = f"{scenario}_act_memory_pJ"
    act = df[act_col].to_numpy(float) if act_col in df else np.zeros(len(df))
    show_act = bool(np.nan_to_num(act).any())
    act = np.nan_to_num(act)
    factor, unit = _energy_unit(float(np.max(compute + memory + act)))
    x = np.arange(len(df))

    fig = _new_figure((max(6.0, 0.34 * len(df) + 1.5), 3.4))
    ax = fig.add_subplot()
    ax.bar(x, compute / factor, 0.75, color=COLORS["compute"], edgecolor="black",
           linewidth=0.5, hatch=HATCHES["compute"], label="compute")
    ax.bar(x, memory / factor, 0.75, bottom=compute / factor, color=COLORS["memory"],
           edgecolor="black", linewidth=0.5, hatch=HATCHES["memory"], label="weight memory")
    if show_act:
        ax.bar(x, act / factor, 0.75, bottom=(compute + memory) / factor,
               color=COLORS["act_memory"], edgecolor="black", linewidth=0.5,
               hatch=HATCHES["act_memory"], label="activation memory")
    _label_layers(ax, df["layer"].tolist(), x)
    ax.set_ylabel(f"energy per image ({unit})")
    mode = "measured activations (zero inputs skipped)" if scenario.endswith("_measured") \
        else "dense activations (every MAC computed)"
    net = (("ternary network" if _is_ternary(analysis) else "quantized network")
           if scenario.startswith("ttq_") else "FP32 network")
    ax.set_title(f"{meta.get('arch', '')}: energy per layer, {net}, {mode}", loc="left")
    fig.legend(loc="outside upper right", ncols=3 if show_act else 2, frameon=False)
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)

    total_uj = float((compute + memory + act).sum()) / 1e6
    mem_share = float(memory.sum() / (compute + memory + act).sum())
    act_share = float(act.sum() / (compute + memory + act).sum())
    substitution = "" if scenario == requested else \
        f" (scenario {scenario} drawn because {requested} does not apply to this analysis)"
    measured_on = f", activation sparsity measured on {_images_phrase(meta)}" \
        if scenario.endswith("_measured") else ""
    caption = (f"Energy per inference of one image for each conv/linear layer of "
               f"{_model_phrase(meta)}, scenario {scenario}{substitution}: {net} with {mode}"
               f"{measured_on}. Bars stack arithmetic (compute)"
               + (", weight-memory and activation-memory" if show_act else " and weight-memory")
               + f" energy in {unit}; the network total is {total_uj:.3g} µJ, "
               f"{_share(mem_share)} of it weight memory"
               + (f" and {_share(act_share)} activation memory" if show_act else "")
               + f". Assumptions: {_energy_assumptions(meta)}.")
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
    if df.empty or (not measured and not _is_quantized(analysis)):
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
    if _is_quantized(analysis):
        net_ws = analysis.network.sparsity.weight_sparsity
        kind = "ternary" if _is_ternary(analysis) else "quantized"
        if net_ws is not None:
            parts[0] += f" ({kind} layers overall: {net_ws:.1%} zero)"
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
    return with_id_prefix(_render_svg(fig), id_prefix)


def _render_svg(fig: Figure) -> str:
    """One SVG rendering of ``fig`` (the slow part: layout and drawing), cleaned.

    The layout is solved first, as savefig would solve it for SVG, and the drawing then
    runs once: savefig on a figure with a layout engine draws it twice (once without
    output, only to run the engine).  The figure keeps its layout engine afterwards."""
    buf = io.StringIO()
    engine = fig.get_layout_engine()
    if engine is not None and not isinstance(engine, PlaceHolderLayoutEngine):
        _lay_out_as_svg(fig)
        _keep_layout(fig)
    try:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "ttq-report"}):
            fig.savefig(buf, format="svg",
                        metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    finally:
        if engine is not None:
            fig.set_layout_engine(engine)
    return _METADATA.sub("", _PROLOG.sub("", buf.getvalue())).strip() + "\n"


def _lay_out_as_svg(fig: Figure) -> None:
    """Run ``fig``'s layout engine as savefig(format="svg") runs it: at the SVG backend's
    72 dpi, measuring text with the SVG renderer (so the result is the same layout)."""
    canvas, dpi = fig.canvas, fig.dpi
    FigureCanvasSVG(fig)
    try:
        fig.dpi = 72
        fig.get_layout_engine().execute(fig)
    finally:
        fig.dpi = dpi
        fig.set_canvas(canvas)


def with_id_prefix(svg: str, id_prefix: str | None) -> str:
    """``svg`` (from :func:`to_svg`) with every id and reference to it prefixed, so the
    same rendering serves the ``.svg`` file and the inlined copy."""
    if not id_prefix:
        return svg
    if not re.fullmatch(r"[A-Za-z][\w-]*", id_prefix):
        raise ValueError(f"id_prefix must be a letter then letters, digits, _ or -; got "
                         f"{id_prefix!r}")
    p = id_prefix + "-"
    svg = re.sub(r'\bid="', f'id="{p}', svg)
    return svg.replace("url(#", f"url(#{p}").replace('href="#', f'href="#{p}')


def save(spec: FigureSpec, folder: str | Path, svg_text: str | None = None) -> list[Path]:
    """Write ``<name>.svg`` and ``<name>.png`` (150 dpi) into ``folder``; return the paths.
    ``svg_text``: the figure's :func:`to_svg` without prefix, if already rendered."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    svg = folder / f"{spec.name}.svg"
    png = folder / f"{spec.name}.png"
    svg.write_text(svg_text if svg_text is not None else to_svg(spec.fig), encoding="utf-8")
    # the SVG rendering has laid the figure out; keep that layout for the PNG instead of
    # solving the constrained layout again (figure fractions do not depend on the DPI)
    _keep_layout(spec.fig)
    spec.fig.savefig(png, format="png", dpi=PNG_DPI,
                     metadata={"Software": None})
    return [svg, png]


def _keep_layout(fig: Figure) -> None:
    """Freeze ``fig``'s current layout: no layout engine at all.  Not ``"none"``: that
    leaves a placeholder engine, and savefig draws a figure that has any engine twice
    (once without output, for the layout), which for a laid-out figure is a wasted pass."""
    with matplotlib.rc_context({"figure.autolayout": False,
                                "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # None reads those two settings: both off, no engine
