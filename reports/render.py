"""Analysis results → report structure → files: ``report.html`` (self-contained: CSS and
SVG figures inline), tables as CSV/LaTeX/Markdown, figures as SVG/PNG, ``analysis.json``.

Nothing here runs a model: everything comes from :class:`ttq_analysis.Analysis` objects.
The report is built in a temporary folder beside the destination and moved into place
at the end, so a failure never leaves a half-written report (an older report at the
destination stays until the new one is complete); a destination that is neither missing,
empty nor an earlier report is refused (:mod:`reports.output_folder`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from markupsafe import Markup

from ttq_analysis import Analysis
from ttq_analysis.results import ACTIVATIONS, savings_over
from ttq_core import __version__
from ttq_core.errors import OutputError
from ttq_core.io import atomic_write_bytes, atomic_write_text

from . import figures as F
from . import tables as T
from .epoch_tradeoff import epoch_table, epoch_tradeoff_figure
from .labels import distinct_slugs, format_word, method_name, slugify  # noqa: F401 (slugify: re-exported)
from .output_folder import build_atomically
from .provenance import provenance_lines
from .templating import environment

RULE_MEANING = {"threshold": "t in Δ = t·max|w|", "sparsity": "target fraction of zero weights r",
                "mixed": "see each layer",
                # other methods (quant["method"]): the rule is the method, the value its number
                "twn": "the factor f in TWN's Δ = f·mean|w|",
                "bwn": "bits per weight", "int4": "bits per weight", "int8": "bits per weight"}


@dataclass
class ReportInput:
    """One network of the report: its analysis and, optionally, its real FP baseline."""

    label: str
    analysis: Analysis
    baseline: Analysis | None = None
    note: str | None = None
    warning: str | None = None  # shown in red: the checkpoint is broken (ttq-report --allow-nonfinite)
    baseline_label: str | None = None  # the baseline's own name (Table 3, its provenance)


def jpeg_note(source: str) -> str | None:
    """The caveat a report shows when its data is the lossy JPEG copy of CIFAR-10."""
    if "jpeg" in source.lower() or "jpg" in source.lower():
        return ("This data is the lossy JPEG copy of CIFAR-10 (quality 75, 4:2:0), not the "
                "original: accuracies are lower than on the original and comparable only "
                "with runs on the same data.")
    return None


def _summary(inp: ReportInput) -> dict[str, Any]:
    net = inp.analysis.network
    base = inp.baseline.network if inp.baseline is not None else None
    out = {"label": inp.label, "test_acc": net.accuracy.test_acc,
           "test_acc_source": net.accuracy.test_acc_source,
           "fp_test_acc": base.accuracy.test_acc if base is not None else None,
           "fp_test_acc_source": base.accuracy.test_acc_source if base is not None else None,
           "fp_label": (inp.baseline_label or "FP baseline") if base is not None else None,
           "weight_bits": net.sizes.weight_bits, "fp_weight_bits": net.sizes.fp_weight_bits,
           "compression": net.sizes.compression,
           "weight_sparsity": net.sparsity.weight_sparsity,
           "act_sparsity_mean": net.sparsity.act_sparsity_mean,
           "act_sparsity_macs_weighted": net.sparsity.act_sparsity_macs_weighted,
           "images": net.images, "note": inp.note, "warning": inp.warning,
           "dense_assumption": T.dense_assumption(inp.analysis),
           "baseline_dense_assumption": (T.dense_assumption(inp.baseline)
                                         if inp.baseline is not None else None),
           # the quantized network's name on the cards ("TTQ", "BWN", "int4", ...)
           "method": method_name(inp.analysis),
           "weight_sparsity_label": f"{format_word(inp.analysis)} layers"}
    # the summary cards: FP32 (the baseline model, else this network's FP32 twin) -> TTQ
    out["energy"] = {act: savings_over(base if base is not None else net, net, act)
                     for act in ACTIVATIONS}
    return out


def _quant(analysis: Analysis) -> dict | None:
    q = (analysis.meta.get("checkpoint") or {}).get("quant")
    if not q:
        return None
    ttq = (q.get("method") or "ttq") == "ttq"
    return {"rule": q.get("rule"), "rule_meaning": RULE_MEANING.get(q.get("rule"), q.get("rule")),
            # TTQ: "Threshold rule ..., each ternary layer"; other methods name themselves
            "rule_label": "Threshold rule" if ttq else "Quantization method",
            "layer_word": "ternary" if ttq else "quantized",
            "value_word": "threshold rule" if ttq else "method",
            "heading": "Per-layer thresholds" if ttq else "Per-layer quantization",
            "fp_layers": q.get("fp_layers", []),
            "layers": [{"layer": n, "rule": spec["rule"], "value": spec["value"]}
                       for n, spec in q.get("layers", {}).items()]}


def _baseline_section(inp: ReportInput) -> dict | None:
    """What a reader needs about a ``--baseline`` checkpoint: its name, file, and where its
    numbers come from (repairs, normalisation), from its own analysis's meta."""
    if inp.baseline is None or inp.analysis.meta.get("what_if"):
        return None  # a what-if's FP side is the FP network's own section
    b = inp.baseline
    return {"label": inp.baseline_label or "FP baseline", "arch": b.meta.get("arch"),
            "source": _source_text(b), "provenance": provenance_lines(b.meta)}


def _source_text(a: Analysis) -> str:
    ck = a.meta.get("checkpoint") or {}
    source = str(ck.get("source", "in-memory model"))
    return f"{source}, {ck['derived']}" if ck.get("derived") else source


def _history(analysis: Analysis):
    return (analysis.meta.get("checkpoint") or {}).get("history")


def render_report(inputs: list[ReportInput], out_dir: str | os.PathLike, *,
                  data_description: str, jpeg_note: str | None = None,
                  title: str | None = None, json_copy: str | os.PathLike | None = None,
                  energy_models: Sequence | None = None) -> Path:
    """Write the whole report to ``out_dir`` (replaced atomically); return report.html.

    ``energy_models``: the cost models the scenario matrix compares (names, paths or
    ``EnergyModel``s; default: the first analysis's own model)."""
    models = _matrix_models(inputs, energy_models)

    def write(folder: Path) -> None:
        _write_report(inputs, folder, data_description, jpeg_note, title, models)
        if json_copy is not None:
            try:
                atomic_write_bytes(json_copy, (folder / "analysis.json").read_bytes())
            except OSError as e:
                raise OutputError(f"--json {json_copy}: cannot write it "
                                  f"({e.strerror or e}); no report was written") from None

    return build_atomically(out_dir, write) / "report.html"


def figure_item(spec: F.FigureSpec, folder: Path, number: int) -> dict:
    """Save ``spec`` as SVG/PNG in ``folder``; return what a template needs to inline it."""
    svg = F.to_svg(spec.fig)  # rendered once: the .svg file and the inlined copy
    F.save(spec, folder, svg_text=svg)
    return {"name": spec.name, "svg": Markup(F.with_id_prefix(svg, spec.name)),
            "caption": spec.caption, "number": number}


def _matrix_models(inputs: list[ReportInput], energy_models: Sequence | None) -> list:
    """The cost models of the scenario matrix, loaded (one-line error for a bad one)."""
    from ttq_analysis.energy import load_energy_model
    if energy_models:
        return [load_energy_model(m) for m in energy_models]
    raw = inputs[0].analysis.meta.get("energy_model") if inputs else None
    return [load_energy_model(raw)] if isinstance(raw, dict) and "ops" in raw else []


def _scenario_sections(inputs: list[ReportInput], models: list, folder: Path,
                       figure_no: int) -> tuple[list[dict], int]:
    """The scenario matrix of every ternary network: tables exported, figure saved."""
    from ttq_analysis.scenario_matrix import scenario_matrix

    from .scenarios import network_scenarios
    sections = []
    if not models:
        return sections, figure_no
    for inp, slug in zip(inputs, distinct_slugs([i.label for i in inputs])):
        a = inp.analysis
        if not a.network.quantized:
            continue
        matrix = scenario_matrix(a.layers, models,
                                 baseline_layers=inp.baseline.layers if inp.baseline is not None else None)
        sec = network_scenarios(inp.label, slug, matrix, kind=format_word(a),
                                derived=bool(a.meta.get("derived_energies")))
        T.export(sec["table"], folder)
        item = None
        if sec["figure"] is not None:
            figure_no += 1
            item = figure_item(sec["figure"], folder, figure_no)
        sections.append({"label": inp.label, "sentence": sec["sentence"], "figure": item,
                         "pivots": [T.to_html(t) for t in sec["pivots"]],
                         "table_name": sec["table"].name,
                         "baseline": ("the real FP checkpoint with its own activations"
                                      if inp.baseline is not None else
                                      "its FP twin (the same layers and activations at full width)")})
    return sections, figure_no


def _write_report(inputs: list[ReportInput], folder: Path, data_description: str,
                  jpeg_note: str | None, title: str | None, models: list) -> None:
    entries = [(i.label, i.analysis) for i in inputs]
    baseline = {i.label: i.baseline for i in inputs if i.baseline is not None}
    table3 = T.table3(entries, baseline or None,
                      baseline_labels={i.label: i.baseline_label for i in inputs
                                       if i.baseline_label})
    T.export(table3, folder)
    first = inputs[0].analysis
    cost = T.cost_model_table(first)
    T.export(cost, folder)
    first_model = (first.meta.get("energy_model") or {}).get("name")
    other_costs = [T.cost_model_table(first, name=f"cost_model_{m.name}", model_raw=m.raw)
                   for m in models if m.name != first_model]
    for table in other_costs:
        T.export(table, folder)
    scenario_sections, figure_no = _scenario_sections(inputs, models, folder, 0)
    networks = []
    for inp, slug in zip(inputs, distinct_slugs([i.label for i in inputs])):
        a = inp.analysis
        layer_tab = dataclasses.replace(T.layer_table(a, who=inp.label), name=f"layers_{slug}")
        T.export(layer_tab, folder)
        figs, hist_figs = [], []
        for spec in F.all_figures(a):
            spec = dataclasses.replace(spec, name=f"{slug}_{spec.name}")
            figure_no += 1
            item = figure_item(spec, folder, figure_no)
            (hist_figs if _is_history(spec.name) else figs).append(item)
        epochs = epoch_table(a, name=f"epochs_{slug}", who=inp.label)
        tradeoff = epoch_tradeoff_figure(epochs, a.meta)
        if tradeoff is not None:
            T.export(epochs, folder)
            figure_no += 1
            hist_figs.append(figure_item(dataclasses.replace(
                tradeoff, name=f"{slug}_{tradeoff.name}"), folder, figure_no))
        history = _history(a)
        networks.append({
            "label": inp.label, "slug": slug, "arch": a.meta.get("arch"),
            "source": _source_text(a),
            "layer_table": T.to_html(layer_tab), "figures": figs, "history_figures": hist_figs,
            "epoch_table": T.to_html(epochs) if tradeoff is not None else None,
            "history_note": ("This checkpoint carries no training history (a plain state_dict "
                             "or an in-memory model), so sparsity evolution, scales and "
                             "training curves cannot be shown." if not history else
                             "No history figure applies to this network."),
            "quant": _quant(a), "run": T.run_description(a),
            "unsupported_ops": a.meta.get("unsupported_ops", {}),
            "other_ops": a.meta.get("other_ops", {}),
            "provenance": provenance_lines(a.meta),
            "baseline": _baseline_section(inp),
        })
    words = {format_word(i.analysis) for i in inputs if i.analysis.network.quantized}
    rows = {method_name(i.analysis) for i in inputs if i.analysis.network.quantized}
    context = {
        "title": title or ("TTQ" if rows <= {"TTQ"} else "Quantized-network")
                 + " efficiency report: " + ", ".join(i.label for i in inputs),
        # "ternary" and "a TTQ row" for TTQ networks, as before; the other methods' words
        "quantized_word": (words.pop() if len(words) == 1 else "quantized") if words else "ternary",
        "quantized_rows": ("a TTQ row" if rows <= {"TTQ"} else "a row in its weight precision"
                           + (f" ({', '.join(sorted(rows - {'quantized'}))})"
                              if rows - {"quantized"} else "")),
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__, "torch_version": str(torch.__version__),
        "networks": networks, "summary": [_summary(i) for i in inputs],
        "table3": T.to_html(table3), "cost_model": T.to_html(cost),
        "other_cost_models": [T.to_html(t) for t in other_costs],
        "scenarios": scenario_sections,
        "act_memory": first.meta.get("act_memory", "none"),
        "conventions": first.meta.get("conventions", {}),
        "memory": first.meta.get("memory", "sram"), "precision": first.meta.get("precision", "fp32"),
        "data": {"description": data_description, "jpeg_note": jpeg_note},
    }
    html = environment().get_template("report.html.j2").render(**context)
    atomic_write_text(folder / "report.html", html)
    summary = {"format": "ttq-report", "networks": [
        {"label": i.label, "analysis": i.analysis.to_dict(),
         "baseline": i.baseline.to_dict() if i.baseline is not None else None} for i in inputs]}
    atomic_write_text(folder / "analysis.json", json.dumps(_finite_or_null(summary), indent=1,
                                                           allow_nan=False))


def _finite_or_null(obj):
    """``obj`` with NaN/Inf floats as None (JSON has no NaN; only a broken checkpoint
    reported with --allow-nonfinite produces them, and its report says so)."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    return obj


HISTORY_FIGURES = ("sparsity_evolution", "scales_evolution", "training_curves",
                   "gradient_multipliers", "epoch_tradeoff")


def _is_history(name: str) -> bool:
    return any(name.endswith(h) for h in HISTORY_FIGURES)
