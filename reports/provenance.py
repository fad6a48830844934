"""Where a network's numbers come from, as sentences for its report section.

Reads only ``Analysis.meta`` (nothing is computed here): what was repaired while loading
(``meta["checkpoint"]["load_notes"]``), the input normalisation used and its origin
(``meta["input_normalization"]``), which plain layers were recognised as ternary and why
others were not (``meta["ternary_detection"]``), which were recognised as binary, int4 or
int8 (``meta["weight_formats"]``), and for a what-if estimate the accuracy before and
after the batch-norm re-estimate (``meta["what_if"]``).  Analyses written
before these fields existed give no sentences.
"""

from __future__ import annotations

from typing import Any

NEAR_MISS_VALUES = 16  # layers with at most this many distinct values are named as near misses


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _numbers(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _kept_fp_line(names: list[str], meta: dict[str, Any]) -> str | None:
    """The sentence for plain layers a TTQ network keeps in full precision by design (a
    toolkit checkpoint's ``quant["fp_layers"]``, or the what-if's first and last layer)."""
    quant = (meta.get("checkpoint") or {}).get("quant") or {}
    listed = quant.get("fp_layers")
    if listed is not None and set(names) <= set(listed):
        method = quant.get("method") or "ttq"
        who = "TTQ keeps" if method == "ttq" else f"the toolkit keeps, for {method.upper()} as for every method,"
        why = ("by design: the checkpoint's quantization config lists "
               + ("it" if len(names) == 1 else "them")
               + f" ({who} the first conv and last linear layer by default)")
    elif meta.get("what_if"):
        why = ("by the what-if estimate, as TTQ training does by default (first conv and "
               "last linear layer)")
    else:
        return None
    return (f"Full-precision layers: {_join_names(names)} {'is' if len(names) == 1 else 'are'} "
            f"kept in full precision {why}; counted as full precision (fp32 MACs, 32-bit "
            f"weights), not as a failed ternary detection.")


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


OTHER_FORMAT_COUNTING = {
    "binary": "additions and one α_c multiplication per output, 1 bit per weight + 32 per "
              "output channel",
    "int4": "MACs at the weight × activation precision, 4 bits per weight + 32 per output "
            "channel",
    "int8": "MACs at the weight × activation precision, 8 bits per weight + 32 per output "
            "channel",
}


def _format_lines(meta: dict[str, Any], names: list[str]) -> tuple[list[str], set[str]]:
    """Sentences for plain layers recognised as binary, int4 or int8 (``meta
    ["weight_formats"]``), and the names of every plain layer counted in a non-FP format."""
    formats = ((meta.get("weight_formats") or {}).get("layers")) or {}
    lines, counted = [], set()
    for fmt, how_counted in OTHER_FORMAT_COUNTING.items():
        found = [n for n in names if (formats.get(n) or {}).get("format") == fmt]
        counted |= set(found)
        if found:
            hows = "; ".join(f"{n}: {formats[n]['how']}" for n in found[:6])
            more = f"; … (+{len(found) - 6} more)" if len(found) > 6 else ""
            lines.append(f"{fmt.capitalize()} weights detected in {len(found)} plain conv/linear "
                         f"layer(s), counted as {fmt} ({how_counted}): {hows}{more}.")
    return lines, counted


def _detection_lines(det: dict, meta: dict[str, Any] | None = None) -> list[str]:
    layers = det.get("layers") or {}
    if not layers:
        return []
    kept = _kept_fp_line(list(layers), meta or {})
    if kept is not None:  # a TTQ network's plain layers: its FP layers, not a detection miss
        return [kept]
    tol = det.get("tolerance")
    other_lines, other = _format_lines(meta or {}, list(layers))
    found = [n for n, d in layers.items() if d.get("ternary")]
    lines = []
    if found:
        hows = "; ".join(f"{n}: {layers[n]['how']}" for n in found[:6])
        more = f"; … (+{len(found) - 6} more)" if len(found) > 6 else ""
        lines.append(f"Ternary weights detected in {len(found)} plain conv/linear layer(s) "
                     f"(at most three values {{−a, 0, +b}} each, tolerance {tol:g}·max|w|), "
                     f"counted as ternary (ternary additions/multiplications, 2-bit weights): "
                     f"{hows}{more}.")
    lines += other_lines
    near = [n for n, d in layers.items() if not d.get("ternary") and n not in other
            and 3 < (d.get("values") or 0) <= NEAR_MISS_VALUES]
    if near:
        formats = ((meta or {}).get("weight_formats") or {}).get("layers") or {}

        def why(n: str) -> str:  # and why not an integer format, where that was checked
            grid = str((formats.get(n) or {}).get("how", ""))
            return layers[n]["how"] + (f"; {grid}" if grid.startswith("not an integer") else "")
        lines.append("Not ternary (four or more distinct weight values, counted as full "
                     "precision): " + "; ".join(f"{n}: {why(n)}" for n in near) + ".")
    rest = len(layers) - len(found) - len(near) - len(other)
    if rest and not found and not other:
        lines.append(f"Ternary detection: none of the {rest} plain conv/linear layers has "
                     f"ternary weights (each takes more than {NEAR_MISS_VALUES} values); "
                     f"all are counted as full precision.")
    return lines


def _what_if_line(w: dict) -> str:
    bn = w.get("bn_reestimation") or {}
    if bn.get("images"):
        step = (f"batch-norm statistics of {bn.get('batch_norm_layers')} layers re-estimated "
                f"on {bn['images']:,} images of the {bn.get('source')} (forward passes only)")
        acc = (f"accuracy {_pct(w.get('accuracy_before_bn'))} before that step, "
               f"{_pct(w.get('accuracy_after_bn'))} after it")
    else:
        step = "batch-norm statistics not re-estimated"
        acc = f"accuracy {_pct(w.get('accuracy_before_bn'))}"
    scales = str(w.get("scales", "least-squares scales")).removesuffix(", not trained")
    return (f"What-if estimate: FP weights ternarized at t={w.get('threshold')} with "
            f"{scales}; no weights were trained, nor the scales; {step}; "
            f"{acc}, on the report's test images.")


def provenance_lines(meta: dict[str, Any]) -> list[str]:
    """The sentences of one network's "where the numbers come from" paragraph."""
    lines = list(((meta.get("checkpoint") or {}).get("load_notes")) or [])
    norm = meta.get("input_normalization")
    if norm:
        lines.append(f"Inputs normalised with mean {_numbers(norm['mean'])} and std "
                     f"{_numbers(norm['std'])} on [0, 1] pixels: {norm['origin']}.")
    lines += _detection_lines(meta.get("ternary_detection") or {}, meta)
    if meta.get("what_if"):
        lines.append(_what_if_line(meta["what_if"]))
    return lines


__all__ = ["provenance_lines"]
