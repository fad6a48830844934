"""Paper tables built from :class:`ttq_analysis.Analysis` objects (the exports, and the
:class:`Table` container, live in :mod:`reports.table_format` and are re-exported here).

A :class:`Table` holds the numbers (a DataFrame of raw floats, units in every column
name), a caption generated from the data (what, which models, which data, units and
assumptions), and display formats.  Builders never run a model: they only read
``analysis.network``, ``analysis.layers`` and ``analysis.meta``.

Builders:

* :func:`table3`: the TTQ paper's Table 3 layout, one row block per network, an
  ``FP32`` row and (for a quantized network) its own row side by side: ``TTQ``, or the
  weight precision of another method (``binary (1 bit)``, ``int4``, ...);
* :func:`layer_table`: one row per conv/linear layer;
* :func:`cost_model_table`: every number of the energy cost model with unit and source.

Exports: :func:`export` (CSV with full precision, booktabs LaTeX, Markdown; atomic
writes), :func:`to_html` (an escaped ``<table>``), :func:`summary_text` (terminal).

All counts and energies are per inference of one input (see ``ttq_analysis``).
Missing values (an accuracy not recorded, activations not measured, a column that does
not apply) are NaN in the data and shown as an en dash.

Size: a little over 450 lines: the builders share the caption helpers (what, which
data, which assumptions); the container and exports are in :mod:`reports.table_format`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from ttq_analysis.analysis import Analysis
from ttq_analysis.energy import ACTIVATION_PRECISIONS, SCENARIOS
from ttq_analysis.results import ACTIVATIONS, NetworkResult, savings_over
from ttq_analysis.weight_formats import WEIGHT_FORMATS
from ttq_core.errors import ConfigError

# the container and exports, re-exported: reports use T.Table, T.export, T.to_html, ...
from .labels import format_word, method_name, precision_label
from .table_format import (_ACC, _COUNT, _FRACTION, _PJ, _RATIO, _SCALE, _UJ,  # noqa: F401
                           MISSING, Table, _is_missing, _num, export, format_value,
                           latex_escape, to_html, to_latex, to_markdown)

__all__ = ["Table", "table3", "layer_table", "cost_model_table", "export", "to_html",
           "to_latex", "to_markdown", "latex_escape", "summary_text", "format_value",
           "dense_assumption", "run_description", "MISSING"]


# ----------------------------------------------------------------------------- helpers

def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _join(items: Iterable[str]) -> str:
    items = list(dict.fromkeys(items))  # unique, in order
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _energy_model_name(a: Analysis) -> str:
    return str((a.meta.get("energy_model") or {}).get("name", "unknown"))


def _data_phrase(a: Analysis) -> str:
    """"1,000 images of the CIFAR-10 test split (fixed class-balanced subset)": the images
    the analysis measured (``meta["measurement_data"]``, which ``ttq-report`` records;
    analyses without it name the dataset the checkpoint records)."""
    images = int(a.meta.get("images") or 0)
    measured = a.meta.get("measurement_data") or {}
    dataset = (f"the {measured['split']}" if measured.get("split") else
               (a.meta.get("checkpoint") or {}).get("dataset") or "an unrecorded dataset")
    if measured.get("subset"):
        dataset += f" ({measured['subset']})"
    if images == 0:
        return f"no images of {dataset} (measured columns are empty)"
    return f"{_plural(images, 'image')} of {dataset}"


def _layer_formats(analyses: Sequence[Analysis]) -> set[str]:
    """The weight formats of every layer of ``analyses`` (analyses before the other formats:
    ternary and fp)."""
    from ttq_analysis.energy import layer_formats
    found: set[str] = set()
    for a in analyses:
        if "ternary" in a.layers.columns:
            found |= set(layer_formats(a.layers))
    return found


def _other_formats(analyses: Sequence[Analysis]) -> bool:
    """Whether any network of ``analyses`` has binary or integer layers, or is named other
    than TTQ (the wording written for ternary networks then needs its other clauses)."""
    return bool(_layer_formats(analyses) - {"fp", "ternary"}) or any(
        a.network.quantized and method_name(a) != "TTQ" for a in analyses)


def _arithmetic(p: str, spec, formats: set[str]) -> str:
    """How one activation precision's arithmetic is counted, for the weight formats present."""
    parts = [f"a MAC = {spec.mult.replace('_', ' ')} + {spec.acc_add.replace('_', ' ')}"]
    acc, P = spec.accumulator.upper(), p.upper()
    if "ternary" in formats or not formats - {"fp", "ternary"}:  # the ternary wording as before
        parts.append(f"ternary additions are {acc} additions, Wp/Wn multiplications {P}")
    if "binary" in formats:
        parts.append(f"binary additions are {acc} additions, α_c multiplications {P} (one "
                     f"per output)")
    ints = sorted(formats & {"int4", "int8"})
    if ints and p == "int8":
        parts.append("; ".join(
            "int8 weights: a MAC = int8 mult + int32 add" if f == "int8" else
            "int4 weights: a MAC = int4×int8 mult (DERIVED: int8 mult × (4·8)/(8·8), an "
            "array multiplier's energy grows with the product of its operand widths) + "
            "int32 add" for f in ints))
    elif ints:
        parts.append(f"{'/'.join(ints)} weights: MACs at {P} (integer weights convert exactly: "
                     f"they save weight memory only)")
    parts.append(f"baseline weights {spec.bits}-bit")
    return f"{P} activations ({'; '.join(parts)})"


def _assumptions(analyses: Sequence[Analysis]) -> str:
    models = _join(_energy_model_name(a) for a in analyses)
    memory = _join(str(a.meta.get("memory", "unknown")).upper() for a in analyses)
    precisions = list(dict.fromkeys(str(a.meta.get("precision", "fp32")) for a in analyses))
    act_memory = list(dict.fromkeys(str(a.meta.get("act_memory", "none")) for a in analyses))
    formats = _layer_formats(analyses)
    arithmetic = []
    for p in precisions:
        spec = ACTIVATION_PRECISIONS.get(p)
        if spec is None:
            arithmetic.append(f"{p.upper()} activations")
        else:
            arithmetic.append(_arithmetic(p, spec, formats))
    counted = [m for m in act_memory if m != "none"]
    traffic = (f"activations read and written once per layer from {_join(m.upper() for m in counted)} "
               f"(dense: every element; measured: a 1-bit zero map plus the nonzero values)"
               if counted else "activation memory traffic not counted")
    storage = ""
    if formats & {"binary", "int4", "int8"}:
        storage = ("; weight storage: " + ", ".join(
            f for f in ("binary 1 bit per weight + 32 per output channel (α_c)"
                        if "binary" in formats else "",
                        "ternary 2 bits per weight + 64 per layer (Wp, Wn)"
                        if "ternary" in formats else "",
                        *(f"{f} {WEIGHT_FORMATS[f].bits} bits per weight + 32 per output "
                          f"channel (the step s_c)" for f in ("int4", "int8") if f in formats))
            if f)
                   + ", 32 per bias")
    return (f"Energy cost model {models}; weights read once per inference from {memory}; "
            f"{_join(arithmetic)}{storage}; {traffic}; bias, batch norm and activation functions "
            f"not counted.")


def _analysis_name(a: Analysis) -> str:
    ck = a.meta.get("checkpoint") or {}
    source = ck.get("source")
    arch = a.meta.get("arch") or a.network.arch or "model"
    if source and source != "module":
        derived = f", {ck['derived']}" if ck.get("derived") else ""
        return f"{arch} ({Path(str(source)).name}{derived})"
    return str(arch)


# ----------------------------------------------------------------------------- table 3

TABLE3_COLUMNS = (
    "network", "precision", "test_acc", "params", "weight_bits", "macs", "ternary_adds",
    "ternary_mults", "weight_sparsity", "act_sparsity", "compute_dense_uJ", "memory_uJ",
    "total_dense_uJ", "compute_measured_uJ", "total_measured_uJ", "saving_dense",
    "saving_measured",
)

TABLE3_FORMATS = {
    "test_acc": _ACC, "params": _COUNT, "weight_bits": _COUNT, "macs": _COUNT,
    "ternary_adds": _COUNT, "ternary_mults": _COUNT, "weight_sparsity": _FRACTION,
    "act_sparsity": _FRACTION, "compute_dense_uJ": _UJ, "memory_uJ": "{:.3f}",
    "total_dense_uJ": _UJ, "compute_measured_uJ": _UJ, "total_measured_uJ": _UJ,
    "saving_dense": _RATIO, "saving_measured": _RATIO,
}


ACT_MEMORY_COLUMNS = ("act_memory_dense_uJ", "act_memory_measured_uJ")
"""Table 3 columns added when activation memory is counted (``--act-memory sram|dram``)."""

TABLE3_HTML_PARTS = (
    ("accuracy, size and operations",
     ("network", "precision", "test_acc", "params", "weight_bits", "macs", "ternary_adds",
      "ternary_mults", "weight_sparsity", "act_sparsity")),
    ("energy per inference (\u00b5J) and savings",
     ("network", "precision", "compute_dense_uJ", "memory_uJ", "act_memory_dense_uJ",
      "total_dense_uJ", "compute_measured_uJ", "act_memory_measured_uJ", "total_measured_uJ",
      "saving_dense", "saving_measured")),
)
"""How the HTML report shows Table 3: two stacked tables (the exports keep one)."""


def _energy(net: NetworkResult, precision: str) -> dict[str, float]:
    """The energy columns (µJ) of a row: ``precision`` "fp32" or "ttq" scenarios."""
    dense, measured = (net.energy.scenario(precision, act) for act in ACTIVATIONS)
    return {
        "compute_dense_uJ": _num(dense.compute_uJ),
        "memory_uJ": _num(dense.memory_uJ),
        "act_memory_dense_uJ": _num(dense.act_memory_uJ),
        "total_dense_uJ": _num(dense.total_uJ),
        "compute_measured_uJ": _num(measured.compute_uJ),
        "act_memory_measured_uJ": _num(measured.act_memory_uJ),
        "total_measured_uJ": _num(measured.total_uJ),
    }


def _baseline_names(analyses: Sequence[Analysis]) -> str:
    return "/".join(dict.fromkeys(_baseline_name(a) for a in analyses)) or "FP32"


def _baseline_name(a: Analysis) -> str:
    """The precision column of a baseline row: FP32, FP16 or INT8 (its arithmetic)."""
    return str(a.meta.get("precision", "fp32")).upper()


def _fp_row(label: str, a: Analysis, *, own_model: bool) -> dict[str, Any]:
    """The FP32 row: ``a`` is either the FP checkpoint itself (``own_model``) or a ternary
    network whose FP twin (same architecture, this network's activations) is counted."""
    net = a.network
    return {
        "network": label, "precision": _baseline_name(a),
        "test_acc": _num(net.accuracy.test_acc) if own_model else math.nan,
        "params": _num(net.sizes.params),
        "weight_bits": _num(net.sizes.fp_weight_bits),
        "macs": _num(net.counts.macs),
        "ternary_adds": math.nan, "ternary_mults": math.nan,
        "weight_sparsity": math.nan,  # defined for ternary layers only
        "act_sparsity": _num(net.sparsity.act_sparsity_macs_weighted),
        **_energy(net, "fp32"),
        "saving_dense": math.nan, "saving_measured": math.nan,
    }


def _ttq_row(label: str, a: Analysis, fp: Analysis | None) -> dict[str, Any]:
    """The quantized network's row of ``a`` ("TTQ", or its weight precision: "binary (1
    bit)", "int4", ...; :func:`reports.labels.precision_label`), its savings over ``fp``
    (the baseline's analysis) or, when ``fp`` is None, over ``a``'s own FP32 twin."""
    net = a.network
    row = {
        "network": label, "precision": precision_label(a),
        "test_acc": _num(net.accuracy.test_acc),
        "params": _num(net.sizes.params),
        "weight_bits": _num(net.sizes.weight_bits),
        "macs": _num(net.counts.macs),
        "ternary_adds": _num(net.counts.ternary_adds),
        "ternary_mults": _num(net.counts.ternary_mults),
        "weight_sparsity": _num(net.sparsity.weight_sparsity),
        "act_sparsity": _num(net.sparsity.act_sparsity_macs_weighted),
        **_energy(net, "ttq"),
    }
    # like with like: FP32 dense vs TTQ dense, FP32 measured vs TTQ measured; the FP32
    # side is the baseline model when there is one, else this network's FP32 twin
    for act in ACTIVATIONS:
        row[f"saving_{act}"] = _num(savings_over(fp.network if fp is not None else net, net,
                                                 act).saving)
    return row


def _check_baseline(label: str, tern: Analysis, fp: Analysis) -> None:
    if fp.network.quantized:
        kind = "ternary" if fp.network.ternary else f"quantized ({method_name(fp)})"
        raise ConfigError(f"table3: baseline[{label!r}] is a {kind} analysis; pass the analysis "
                          f"of the full-precision checkpoint")
    for what, get in (("energy model", _energy_model_name),
                      ("memory level", lambda a: a.meta.get("memory")),
                      ("precision", lambda a: a.meta.get("precision")),
                      ("architecture", lambda a: a.meta.get("arch") or a.network.arch)):
        mine, theirs = get(tern), get(fp)
        if mine is not None and theirs is not None and mine != theirs:
            raise ConfigError(f"table3: {label!r} uses {what} {mine!r} but its baseline uses "
                              f"{theirs!r}; analyse both with the same {what} so the savings "
                              f"compare like with like")


def table3(entries: Sequence[tuple[str, Analysis]],
           baseline: dict[str, Analysis] | None = None, *,
           name: str = "table3_energy",
           baseline_labels: dict[str, str] | None = None) -> Table:
    """The TTQ paper's Table 3 layout: per network an ``FP32`` row and, for a quantized
    network, its row (precision ``TTQ``, or the weight precision of another method:
    :func:`reports.labels.precision_label`), with accuracy, sizes, operation counts,
    sparsities, energies (µJ per inference of one input) and savings.

    ``entries`` are ``(label, analysis)`` pairs; ``baseline`` maps a label to the analysis
    of that network's real FP checkpoint.  With a baseline the FP32 row is that model
    (its accuracy, its own measured activations, its energy) and the savings compare with
    it; without, the FP32 row is the same architecture counted in FP32 with the ternary
    network's activations (accuracy unknown: NaN).  ``saving_dense`` = FP32
    ``total_dense_uJ`` / TTQ ``total_dense_uJ``, ``saving_measured`` likewise with measured
    activations.  An FP-only analysis gives one FP32 row with its own energy.

    ``baseline_labels`` maps a label to its baseline's own name, shown in that FP32 row
    (default: the baseline's architecture and file name).  A baseline that is also an
    entry (the same ``Analysis`` object: an FP network and its what-if estimate, or a
    ``--baseline`` also given as an input) keeps its one FP32 row; the TTQ row's savings
    are over it.
    """
    entries = list(entries)
    if not entries:
        raise ConfigError("table3: no entries; pass a list of (label, Analysis) pairs")
    baseline = dict(baseline or {})
    labels = [label for label, _ in entries]
    unknown = [key for key in baseline if key not in labels]
    if unknown:
        raise ConfigError(f"table3: baseline label {unknown[0]!r} matches no entry; "
                          f"entry labels: {', '.join(map(repr, labels))}")
    names = dict(baseline_labels or {})
    rows: list[dict[str, Any]] = []
    groups: list[int] = []  # row block of each row: a network with its FP32 row
    fp_rows: dict[int, tuple[int, str]] = {}  # id(FP analysis) -> (its block, its row's name)
    used: list[Analysis] = []
    twin_labels, fp_only_labels = [], []
    paired: list[tuple[str, str]] = []  # (ternary label, the FP32 row it is compared with)
    fp_entries = {id(a) for label, a in entries if isinstance(a, Analysis) and not a.network.quantized}
    for label, a in entries:
        if not isinstance(a, Analysis):
            raise ConfigError(f"table3: entry {label!r} is a {type(a).__name__}, not an Analysis")
        used.append(a)
        if not a.network.quantized:
            if label in baseline:
                raise ConfigError(f"table3: {label!r} is already a full-precision analysis; "
                                  f"drop its baseline")
            if id(a) in fp_rows:  # the same analysis given twice: one row
                continue
            fp_rows[id(a)] = (len(set(groups)), label)
            groups.append(fp_rows[id(a)][0])
            rows.append(_fp_row(label, a, own_model=True))
            fp_only_labels.append(label)
            continue
        fp = baseline.get(label)
        if fp is not None:
            _check_baseline(label, a, fp)
            used.append(fp)
            if id(fp) not in fp_rows and id(fp) in fp_entries:
                # the baseline is an entry further down: its row comes first, with its name
                fp_label = next(lab for lab, e in entries if e is fp)
                fp_rows[id(fp)] = (len(set(groups)), fp_label)
                groups.append(fp_rows[id(fp)][0])
                rows.append(_fp_row(fp_label, fp, own_model=True))
                fp_only_labels.append(fp_label)
            if id(fp) in fp_rows:  # its FP32 row is already in the table: not repeated
                block, fp_label = fp_rows[id(fp)]
            else:
                fp_label = names.get(label) or _analysis_name(fp)
                block = len(set(groups))
                fp_rows[id(fp)] = (block, fp_label)
                groups.append(block)
                rows.append(_fp_row(fp_label, fp, own_model=True))
            paired.append((label, fp_label))
        else:
            block = len(set(groups))
            groups.append(block)
            rows.append(_fp_row(label, a, own_model=False))
            twin_labels.append(label)
        groups.append(block)
        rows.append(_ttq_row(label, a, fp))
    columns = list(TABLE3_COLUMNS)
    formats = dict(TABLE3_FORMATS)
    with_act_memory = any(str(a.meta.get("act_memory", "none")) != "none" for a in used)
    if with_act_memory:  # weights, activations and arithmetic as parts of each total
        columns.insert(columns.index("total_dense_uJ"), "act_memory_dense_uJ")
        columns.insert(columns.index("total_measured_uJ"), "act_memory_measured_uJ")
        formats.update({c: _UJ for c in ACT_MEMORY_COLUMNS})
    precisions = {str(a.meta.get("precision", "fp32")) for a in used}
    title_base = "/".join(sorted(p.upper() for p in precisions))
    df = pd.DataFrame(rows, columns=columns)
    return Table(name=name, title=f"Accuracy, size, operations and energy: {title_base} vs "
                                  f"{_methods([a for _, a in entries])}",
                 df=df, caption=_table3_caption(entries, baseline, twin_labels,
                                                paired, fp_only_labels, used,
                                                with_act_memory),
                 formats=formats, group_by="network", groups=groups,
                 html_parts=TABLE3_HTML_PARTS)


def _named(names: str) -> str:
    """``"BWN; "`` for a parenthesis that names the method; nothing where the name says
    no more than "quantized" or the format word."""
    return "" if names in ("quantized", "binary", "int4", "int8") else f"{names}; "


def _methods(analyses: Sequence[Analysis]) -> str:
    """The quantized networks' names ("TTQ", "BWN", "TTQ/INT4"); "TTQ" when there is none."""
    names = [method_name(a) for a in analyses if a.network.quantized]
    return "/".join(dict.fromkeys(names)) or "TTQ"


def _table3_caption(entries, baseline, twin_labels, paired, fp_only_labels,
                    used, with_act_memory: bool = False) -> str:
    quantized = [a for _, a in entries]
    if not _other_formats(quantized):  # ternary networks: the wording as before
        parts = [f"Test accuracy (fraction), parameters, weight storage (bits), dense MACs, "
                 f"ternary additions and multiplications (dense activations), weight sparsity "
                 f"(fraction of zero weights in ternary layers), MAC-weighted activation sparsity "
                 f"and energy in \u00b5J per inference of one input, FP32 and TTQ rows side by side, "
                 f"for {_join(label for label, _ in entries)}."]
    else:
        parts = [f"Test accuracy (fraction), parameters, weight storage (bits), dense MACs, "
                 f"additions and scale multiplications of the ternary and binary layers "
                 f"(columns ternary_adds, ternary_mults; dense activations; empty for a network "
                 f"of integer or FP layers, counted in MACs), weight sparsity (fraction of zero "
                 f"weights in the quantized layers), MAC-weighted activation sparsity and energy "
                 f"in \u00b5J per inference of one input, FP32 rows and the quantized "
                 f"network's row ({_named(_methods(quantized))}precision column: its weight "
                 f"precision) side by side, for {_join(label for label, _ in entries)}."]
    data = []
    fp_names = dict(paired)
    for label, a in entries:
        data.append((label, _data_phrase(a)))
        if label in baseline:
            data.append((fp_names.get(label, f"{label} FP32 baseline"),
                         _data_phrase(baseline[label])))
    if len({phrase for _, phrase in data}) == 1:
        parts.append(f"Activations measured on {data[0][1]}"
                     + (" for every model." if len(data) > 1 else "."))
    else:
        parts.append("Activations measured on " + "; ".join(f"{phrase} ({who})"
                                                             for who, phrase in data) + ".")
    for label, fp_label in paired:
        parts.append(f"{label} is compared with the FP32 row of {fp_label}: the trained "
                     f"full-precision checkpoint with its own accuracy and measured "
                     f"activations.")
    if twin_labels:
        kind = ("ternary" if not _other_formats(quantized) else
                _join(dict.fromkeys(format_word(a) for label, a in entries
                                    if label in twin_labels)))
        parts.append(f"FP32 rows of {_join(twin_labels)}: the same architecture counted in "
                     f"FP32 with the {kind} network's own activations (no FP accuracy).")
    if fp_only_labels:
        parts.append(f"{_join(fp_only_labels)}: full-precision network only.")
    parts.append(f"Energy columns: dense = every MAC or {_op_word(quantized)} operation "
                 "computed (the "
                 "paper's assumption), measured = operations with a zero input skipped on the "
                 "real inputs; memory_uJ = weight reads (the same under both assumptions). "
                 + ("act_memory_*_uJ = activation reads and writes (dense: every element "
                    "stored; measured: a 1-bit zero map plus the nonzero values); each total "
                    "= compute + memory + act_memory. " if with_act_memory else "")
                 + f"Savings = {_baseline_names(used)} total / {_methods(quantized)} total under "
                 f"the same activation assumption.")
    parts.append(_assumptions(used))
    return " ".join(parts)


def _op_word(analyses: Sequence[Analysis]) -> str:
    """"ternary" (as before), or the add-only formats present ("binary", "ternary or
    binary"), or "quantized-layer" for integer layers only."""
    if not _other_formats(analyses):
        return "ternary"
    adds = [f for f in ("ternary", "binary") if f in _layer_formats(analyses)]
    return " or ".join(adds) if adds else "quantized-layer"


# ----------------------------------------------------------------------------- layer table

LAYER_COLUMNS = (
    "layer", "kind", "ternary", "params", "macs", "weight_sparsity", "frac_pos", "frac_neg",
    "wp", "wn", "act_sparsity", "ternary_adds", "effective_adds",
    *(f"{s}_total_pJ" for s in SCENARIOS),
)


LAYER_HTML_PARTS = (
    ("sizes, weights and activations",
     ("layer", "kind", "ternary", "params", "macs", "weight_sparsity", "frac_pos", "frac_neg",
      "wp", "wn", "act_sparsity")),
    ("operations and energy (pJ per inference)",
     ("layer", "kind", "ternary_adds", "effective_adds", *(f"{s}_total_pJ" for s in SCENARIOS))),
)
"""How the HTML report shows the per-layer table: two stacked tables (the exports keep one)."""


def _scales_phrase(a: Analysis) -> str:
    """What the wp, wn columns hold for this network, from what its meta records."""
    if not a.network.ternary:  # binary and integer layers have no Wp, Wn either
        return "wp, wn: not applicable (no ternary layer)"
    if a.meta.get("what_if"):
        return ("wp, wn: least-squares ternary scales of the FP weights, not trained (an "
                "untrained what-if estimate)")
    found = [n for n, d in ((a.meta.get("ternary_detection") or {}).get("layers") or {}).items()
             if d.get("ternary")]
    if found and not (a.meta.get("checkpoint") or {}).get("quant"):
        return ("wp, wn: the positive and negative weight values found in the file "
                "(ternary weights detected, trained elsewhere)")
    return "wp, wn: trained ternary scales"


def layer_table(analysis: Analysis, *, name: str = "layers", who: str | None = None) -> Table:
    """One row per conv/linear layer (module order): sizes, weight and activation
    sparsity, Wp/Wn, ternary additions (dense and measured) and the total energy of each
    scenario in pJ per inference of one input.  ``who``: the network's name in the title
    and caption (default: its architecture and file name)."""
    missing = [c for c in LAYER_COLUMNS if c not in analysis.layers.columns]
    if missing:
        raise ConfigError(f"layer_table: the analysis lacks layer column(s) {', '.join(missing)}; "
                          f"re-run ttq_analysis.analyze with this toolkit version")
    columns = list(LAYER_COLUMNS)
    html_parts = LAYER_HTML_PARTS
    other = _other_formats([analysis])
    if other and "weight_format" in analysis.layers.columns:  # ternary tables as before
        columns.insert(columns.index("ternary") + 1, "weight_format")
        html_parts = tuple((title, tuple(c for col in cols for c in (
            (col, "weight_format") if col == "ternary" else (col,)))) for title, cols in html_parts)
    df = analysis.layers.loc[:, columns].reset_index(drop=True).copy()
    for col in ("layer", "kind") + (("weight_format",) if "weight_format" in columns else ()):
        df[col] = df[col].astype(object)
    formats = {"params": _COUNT, "macs": _COUNT, "weight_sparsity": _FRACTION,
               "frac_pos": _FRACTION, "frac_neg": _FRACTION, "wp": _SCALE, "wn": _SCALE,
               "act_sparsity": _FRACTION, "ternary_adds": _COUNT, "effective_adds": _COUNT,
               **{f"{s}_total_pJ": _PJ for s in SCENARIOS}}
    who = who or _analysis_name(analysis)
    if not other:  # ternary networks: the wording as before
        caption = (f"Per-layer breakdown of {who} ({len(df)} conv/linear layers, PyTorch module "
                   f"names), activations measured over {_data_phrase(analysis)}. weight_sparsity, "
                   f"frac_pos, frac_neg: fractions of zero, positive and negative ternary weights "
                   f"(FP layers: fraction of zero weights); {_scales_phrase(analysis)}; "
                   f"act_sparsity: fraction of zeros in the layer's input, mean over images; "
                   f"ternary_adds: additions with dense activations, effective_adds: additions "
                   f"with the measured activations; *_total_pJ: compute + weight-memory energy in "
                   f"pJ per inference of one input (fp32 = FP twin, ttq = ternary network; dense "
                   f"vs measured activations). NaN: not applicable (FP layer) or not measured. "
                   + _assumptions([analysis]))
    else:
        caption = (f"Per-layer breakdown of {who} ({len(df)} conv/linear layers, PyTorch module "
                   f"names), activations measured over {_data_phrase(analysis)}. weight_format: "
                   f"how each layer is counted (fp, binary, ternary, int4, int8; see "
                   f"\"Where the numbers come from\"); weight_sparsity: fraction of zero weights "
                   f"(quantized layers: of the quantized weights); frac_pos, frac_neg: fractions "
                   f"of positive and negative ternary weights (ternary layers only); "
                   f"{_scales_phrase(analysis)}; act_sparsity: fraction of zeros in the layer's "
                   f"input, mean over images; ternary_adds: additions of a ternary or binary "
                   f"layer with dense activations, effective_adds: with the measured activations "
                   f"(integer and FP layers are counted in MACs); *_total_pJ: compute + "
                   f"weight-memory energy in pJ per inference of one input (fp32 = FP twin, ttq = "
                   f"the {format_word(analysis)} network, {_named(method_name(analysis))}dense vs "
                   f"measured activations). NaN: not applicable or not measured. "
                   + _assumptions([analysis]))
    return Table(name=name, title=f"Per-layer analysis: {who}", df=df, caption=caption,
                 formats=formats, html_parts=html_parts)


# ----------------------------------------------------------------------------- cost model

def cost_model_table(analysis: Analysis, *, name: str = "cost_model",
                     model_raw: dict | None = None) -> Table:
    """Every number of an energy cost model with its unit and source: the analysis's own
    (``meta["energy_model"]``, as embedded at analysis time) or ``model_raw`` (another
    model the report compares, ``EnergyModel.raw``); ``used`` marks the numbers that enter
    this analysis's energies under its activation precision and memory levels."""
    raw = model_raw if model_raw is not None else analysis.meta.get("energy_model")
    if not isinstance(raw, dict) or "ops" not in raw:
        raise ConfigError("cost_model_table: the analysis carries no energy model "
                          "(meta['energy_model']); re-run ttq_analysis.analyze")
    precision = str(analysis.meta.get("precision", "fp32"))
    prec = ACTIVATION_PRECISIONS.get(precision)
    used_ops = (prec.mult, prec.acc_add) if prec else (f"{precision}_add", f"{precision}_mult")
    memory = analysis.meta.get("memory")
    act_memory = analysis.meta.get("act_memory", "none")
    rows = []
    for op, spec in raw.get("ops", {}).items():
        rows.append({"quantity": op.replace("_", " "), "value_pJ": float(spec["pJ"]),
                     "per": "operation", "used": op in used_ops,
                     "source": spec.get("source", "")})
    for level, spec in raw.get("memory", {}).items():
        rows.append({"quantity": f"{level.upper()} read", "value_pJ": float(spec["pJ_per_32bit"]),
                     "per": "32-bit access", "used": level in (memory, act_memory),
                     "source": spec.get("source", "")})
    for size, spec in (raw.get("cache_pJ_per_64bit") or {}).items():
        rows.append({"quantity": f"{size} cache read", "value_pJ": float(spec["pJ"]),
                     "per": "64-bit access", "used": False, "source": spec.get("source", "")})
    derived = _derived_rows(analysis, raw, precision)
    rows += derived
    df = pd.DataFrame(rows, columns=["quantity", "value_pJ", "per", "used", "source"])
    df["used"] = df["used"].astype(bool)
    model_name = raw.get("name", "unknown")
    description = str(raw.get("description", "")).strip()
    caption = (f"Energy cost model {model_name}"
               + (f" ({description.rstrip('.')})" if description else "")
               + f": energy in pJ per operation or per memory access, each with its source. "
               f"used = enters the energies of {_analysis_name(analysis)}: "
               + (f"{prec.mult.replace('_', ' ')} and {prec.acc_add.replace('_', ' ')} (one MAC "
                  f"= one of each; {precision} activations, {prec.accumulator} accumulation)"
                  if prec else f"{precision} addition and multiplication")
               + f", weights read from {str(memory).upper()} once per inference"
               + (f", activations read and written in {str(act_memory).upper()}"
                  if act_memory not in (None, "none") else "")
               + ". Cache figures are informational."
               + (" Rows marked DERIVED are not in the cost model: the toolkit computes them "
                  "from its numbers by the rule in their source column (no published figure)."
                  if derived else ""))
    return Table(name=name, title=f"Energy cost model: {model_name}", df=df, caption=caption,
                 formats={"value_pJ": "{:g}"})


def _derived_rows(analysis: Analysis, raw: dict, precision: str) -> list[dict]:
    """Rows for the derived operation energies the analysis's layers may use
    (``meta["derived_energies"]``), computed from ``raw``'s own numbers, flagged."""
    from ttq_analysis.energy import derived_ops, load_energy_model
    if not analysis.meta.get("derived_energies"):
        return []
    formats = _layer_formats([analysis])
    try:
        model = load_energy_model(raw)
    except ConfigError:
        return []
    rows = []
    for op, d in derived_ops(model, formats).items():
        used = bool(derived_ops(model, formats, [precision]).get(op))
        rows.append({"quantity": f"{op.replace('_', ' ')} (DERIVED)", "value_pJ": d["pJ"],
                     "per": "operation", "used": used,
                     "source": (f"DERIVED, not a published figure: {d['base'].replace('_', ' ')} "
                                f"{d['base_pJ']:g} pJ (its row in this table) × {d['factor']:g}; "
                                f"rule: {d['rule']}")})
    return rows


# ----------------------------------------------------------------------------- provenance

def bn_statistics_phrase(cfg: dict, refresh: dict | None) -> str:
    """How a TTQ run's batch-norm running statistics were estimated, as a clause of the run
    description ("" when they are the training's running averages).  ``refresh``: the
    ``bn_refresh`` record ``ttq-refresh-bn`` writes."""
    if isinstance(refresh, dict):
        prev = refresh.get("previous_train_config") or {}
        before, after = refresh.get("test_acc_before"), refresh.get("test_acc_after")
        acc = (f" (test accuracy {before * 100:.2f} % → {after * 100:.2f} % on "
               f"{refresh.get('test_images', 0):,} images)"
               if isinstance(before, float) and isinstance(after, float) else "")
        trained = (f"re-estimated on {prev['bn_recal_images']:,} unaugmented training images "
                   f"during training" if prev.get("bn_recal_images") else
                   "the training's running averages")
        return (f", batch-norm statistics {trained}, then refreshed by ttq-refresh-bn on "
                f"{refresh.get('images', 0):,} training images drawn through the training "
                f"augmentation{acc}; the per-epoch history was measured before the refresh")
    if not cfg.get("bn_recal_images"):
        return ""
    how = ("drawn through the training augmentation (random crop + flip)"
           if cfg.get("bn_recal_augment") else "without augmentation (toolkit 0.1)")
    return (f", batch-norm statistics re-estimated on {cfg['bn_recal_images']:,} training "
            f"images {how} after ternarizing and after each epoch")


def run_description(a: Analysis) -> str | None:
    """How the analysed checkpoint was trained — data, schedule, hardware — in one
    paragraph, from what the checkpoint records (None for a checkpoint without a record)."""
    ck = a.meta.get("checkpoint") or {}
    cfg = ck.get("train_config")
    if not isinstance(cfg, dict):
        return None
    metrics = ck.get("metrics") or {}
    parts = [f"{cfg.get('mode', '?').upper()} training of {cfg.get('arch', '?')} on "
             f"{cfg.get('dataset', '?')}"]
    if cfg.get("init"):
        parts[0] += f", initialised from {Path(str(cfg['init'])).name}"
    train_n, test_n = metrics.get("train_images"), metrics.get("test_images")
    data = f"{train_n:,} training images" if isinstance(train_n, int) else "the training split"
    if cfg.get("limit_train"):
        data += " (fixed class-balanced subset)"
    if isinstance(test_n, int):
        data += f", tested on {test_n:,} images"
    if ck.get("data_source"):
        data += f" from {ck['data_source']}"
    parts.append(data)
    sched = (f"{len(ck.get('history') or [])} of {cfg.get('epochs')} epochs, batch "
             f"{cfg.get('batch_size')}, SGD momentum {cfg.get('momentum')}, peak LR "
             f"{cfg.get('lr')} ({cfg.get('schedule')} schedule, {cfg.get('warmup_epochs')} "
             f"warm-up epochs), weight decay {cfg.get('weight_decay')}")
    if cfg.get("mode") == "ttq":
        init = cfg.get("scale_init", "least-squares")  # runs before scale_init: least squares
        decay = "with" if cfg.get("wd_scales") else "without"
        sched += (f", Wp/Wn initialised {'at 1' if init == 'one' else 'by least squares'}, "
                  f"their LR × {cfg.get('scale_lr_mult')} {decay} weight decay, latent-gradient "
                  f"scaling {'on' if cfg.get('grad_scaling', True) else 'off (plain STE)'}")
        sched += bn_statistics_phrase(cfg, ck.get("bn_refresh"))
    parts.append(sched)
    hw = f"hardware: {ck.get('device', 'unrecorded')}"
    dist = ck.get("distributed")
    world = dist.get("world_size") if isinstance(dist, dict) else None
    if isinstance(world, int) and world > 1:
        hw += f" × {world} processes"
    if isinstance(metrics.get("train_seconds"), (int, float)):
        hw += f", {metrics['train_seconds'] / 60:.1f} min of training"
    sw = ck.get("software") or {}
    if sw:
        hw += f" (toolkit {sw.get('ttq_toolkit', '?')}, PyTorch {sw.get('torch', '?')})"
    parts.append(hw)
    return "; ".join(parts) + "."


# ----------------------------------------------------------------------------- dense assumption

DENSE_TOLERANCE = 0.10
"""The dense-activation assumption "holds" when it moves the network's energy by at most
this fraction of the measured figure."""


def dense_assumption(a: Analysis) -> dict[str, Any] | None:
    """How far the dense-activation energy of ``a`` is from the measured one.

    For a ternary network the ``ttq`` scenarios, for an FP network the ``fp32`` ones:
    ``dense_uJ``, ``measured_uJ`` (totals per inference), ``ratio`` = dense / measured,
    ``compute_ratio`` (compute only), ``holds`` (|ratio − 1| ≤ :data:`DENSE_TOLERANCE`),
    and ``statement``, one sentence for a report.  None when nothing was measured.
    """
    net = a.network
    scenario = net.own_precision
    dense_e, measured_e = (net.energy.scenario(scenario, act) for act in ACTIVATIONS)
    dense, measured = dense_e.total_uJ, measured_e.total_uJ
    if _is_missing(dense) or _is_missing(measured) or not measured:
        return None
    dc, mc = dense_e.compute_uJ, measured_e.compute_uJ
    ratio = dense / measured
    compute_ratio = dc / mc if not _is_missing(dc) and not _is_missing(mc) and mc else math.nan
    holds = abs(ratio - 1) <= DENSE_TOLERANCE
    zeros = net.sparsity.act_sparsity_macs_weighted
    kind = format_word(a) if scenario == "ttq" else "FP32"
    over = "overstates" if ratio >= 1 else "understates"
    statement = (
        f"Assuming dense activations gives {dense:.3g} µJ per inference for this {kind} "
        f"network; skipping the zero activations measured on {_plural(net.images, 'image')} "
        f"gives {measured:.3g} µJ, so the assumption {over} its energy {ratio:.2f}× "
        f"({ratio - 1:+.1%}; compute alone {compute_ratio:.2f}×)"
        + (f", with {zeros:.1%} of the MAC-weighted activations zero. " if not _is_missing(zeros) else ". ")
        + ("The dense-activation assumption holds for this network (within "
           f"{DENSE_TOLERANCE:.0%})." if holds else
           "The dense-activation assumption does not hold for this network "
           f"(off by more than {DENSE_TOLERANCE:.0%}): quote the measured figure."))
    return {"scenario": scenario, "dense_uJ": dense, "measured_uJ": measured, "ratio": ratio,
            "compute_ratio": compute_ratio, "holds": holds, "statement": statement}


# ----------------------------------------------------------------------------- terminal

def summary_text(entries: Sequence[tuple[str, Analysis]],
                 baseline: dict[str, Analysis] | None = None,
                 baseline_labels: dict[str, str] | None = None) -> str:
    """Table 3 for the terminal: the same rows and numbers (same baseline pairing), compact:
    accuracy, weight storage, dense MACs, total energy (µJ per inference) with dense and
    with measured activations, and the savings of the quantized network (TTQ, ...) over
    FP32 counted like with like."""
    t = table3(entries, baseline, baseline_labels=baseline_labels)
    cols = {"network": "network", "precision": "prec", "test_acc": "acc %",
            "weight_bits": "weights Mbit", "macs": "MACs M", "total_dense_uJ": "dense uJ",
            "total_measured_uJ": "measured uJ", "saving_dense": "saving dense",
            "saving_measured": "saving meas"}
    scale = {"test_acc": (100, "{:.2f}"), "weight_bits": (1e-6, "{:.2f}"), "macs": (1e-6, "{:.2f}"),
             "total_dense_uJ": (1, "{:.2f}"), "total_measured_uJ": (1, "{:.2f}"),
             "saving_dense": (1, "{:.2f}x"), "saving_measured": (1, "{:.2f}x")}
    rows = []
    for _, r in t.df.iterrows():
        rows.append([str(r["network"]), str(r["precision"])] + [
            format_value(_num(r[c]) * f, spec) for c, (f, spec) in scale.items()])
    header = list(cols.values())
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    text = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows), "",
            "Energies per inference of one input. " + _assumptions([a for _, a in entries]),
            f"Savings: {_baseline_names([a for _, a in entries])} total / "
            f"{_methods([a for _, a in entries])} total, same activations (dense or measured)."]
    for label, a in entries:
        d = dense_assumption(a)
        if d is not None:
            verdict = "holds" if d["holds"] else "does not hold"
            text.append(f"Dense-activation assumption, {label}: dense / measured = "
                        f"{d['ratio']:.2f}x ({verdict}, tolerance {DENSE_TOLERANCE:.0%}).")
    return "\n".join(text) + "\n"
