"""Names of the networks in one report: distinct labels, distinct file-name slugs, and the
name of each network's quantization method (:func:`method_name`, :func:`precision_label`,
:func:`format_word`).

A report names each network in Table 3, in its section headings, in its file names
(``layers_<slug>.csv``, ``<slug>_<figure>.svg``) and in the ids of its inlined SVGs.
Two inputs must never share a name, or one network's files overwrite the other's and
the HTML holds duplicate ids.  Assumption: inputs are named by their paths, which are
distinct strings unless the same path is given twice.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Sequence

_RUN_FILES = ("best", "last")  # "best" alone says nothing: keep the run folder's name


def _name(path: str, depth: int) -> str:
    """The file stem with ``depth`` parent folders in front (``a/b/ttq`` at depth 2)."""
    p = PurePath(path)
    parts = [*p.parent.parts, p.stem]
    parts = [x for x in parts if x not in ("", ".", "/")]
    return "/".join(parts[-(depth + 1):]) if parts else path


def distinct_names(paths: Sequence[str]) -> list[str]:
    """A short name per path, distinct among ``paths``: the file stem (``run/best`` for a
    run's best.pt/last.pt), with as many parent folders as it takes to tell two inputs
    apart (``a/ttq``, ``b/ttq``); the same path given twice gets ``#2``, ``#3``."""
    depth = [1 if PurePath(p).stem in _RUN_FILES and PurePath(p).parent.name else 0
             for p in paths]
    names = [_name(p, d) for p, d in zip(paths, depth)]
    for _ in range(64):  # paths are at most this deep in practice
        clash = {n for n in names if names.count(n) > 1}
        grow = [i for i, n in enumerate(names) if n in clash
                and _name(paths[i], depth[i] + 1) != names[i]]
        if not grow:
            break
        for i in grow:
            depth[i] += 1
            names[i] = _name(paths[i], depth[i])
    return _numbered(names)


def _numbered(names: list[str], sep: str = " #") -> list[str]:
    """``names`` with the second, third, ... copy of a name suffixed ``#2``, ``#3``."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}{sep}{seen[n]}")
    return out


def slugify(text: str) -> str:
    """``text`` as a file-name part: lowercase letters, digits and ``-``."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug or "network"


def distinct_slugs(labels: Sequence[str]) -> list[str]:
    """One slug per label, distinct even where two labels slugify alike (``a/b``, ``a-b``)."""
    slugs = [slugify(x) for x in labels]
    seen: dict[str, int] = {}
    taken = set(slugs)
    out = []
    for s in slugs:
        seen[s] = seen.get(s, 0) + 1
        if seen[s] > 1:
            k = seen[s]
            while f"{s}-{k}" in taken:
                k += 1
            s = f"{s}-{k}"
            taken.add(s)
        out.append(s)
    return out


# ----------------------------------------------------------------------------- methods

METHOD_NAMES = {"ttq": "TTQ", "twn": "TWN", "bwn": "BWN", "int4": "INT4", "int8": "INT8"}
"""How a report names a toolkit quantizer method (``quant["method"]``)."""


def quantizer_method(a) -> str | None:
    """The toolkit method of analysis ``a``'s network: its checkpoint's quantization record
    (``quant["method"]``, ``"ttq"`` for records without it), else its layers' quantizers
    (``meta["weight_formats"]["method"]``); None for an FP network or weights recognised in
    plain layers."""
    if not a.network.quantized:
        return None
    quant = (a.meta.get("checkpoint") or {}).get("quant")
    if isinstance(quant, dict) and quant:
        return str(quant.get("method") or "ttq")
    return (a.meta.get("weight_formats") or {}).get("method")


def _format(a) -> str | None:
    """The quantized network's weight format: ternary, binary, int4, int8, mixed (None: FP)."""
    return a.network.weight_format if a.network.quantized else None


def method_name(a) -> str:
    """The quantized network's name in sentences and column headings: the toolkit method
    (TTQ, TWN, BWN, INT4, INT8), or for weights recognised in a plain state_dict their
    format (``"binary"``, ``"int4"``, ``"int8"``, ``"quantized"`` for several; ternary ones
    stay "TTQ", as before the other formats).  "TTQ" for an FP network (the heading of the scenario it
    lacks)."""
    method = quantizer_method(a)
    if method is not None:
        return METHOD_NAMES.get(method, method.upper())
    fmt = _format(a)
    return "TTQ" if fmt in (None, "ternary") else "quantized" if fmt == "mixed" else fmt


def format_word(a) -> str:
    """"ternary", "binary", "int4", "int8", or "quantized" (several formats): the word for
    the network in "this ... network"."""
    fmt = _format(a)
    return "ternary" if fmt is None else "quantized" if fmt == "mixed" else fmt


def precision_label(a) -> str:
    """Table 3's precision column for the quantized network: "TTQ" for TTQ (and ternary
    weights recognised in a plain file), else the weight precision ("ternary (2 bit)",
    "binary (1 bit)", "int4", "int8", "mixed (binary, int4)")."""
    from ttq_analysis.weight_formats import WEIGHT_FORMATS
    if method_name(a) == "TTQ":
        return "TTQ"
    fmt = _format(a)
    if fmt in WEIGHT_FORMATS:
        return WEIGHT_FORMATS[fmt].label
    found = (a.meta.get("weight_formats") or {}).get("formats") or []
    return f"mixed ({', '.join(found)})" if found else str(fmt)


__all__ = ["distinct_names", "distinct_slugs", "slugify", "METHOD_NAMES", "quantizer_method",
           "method_name", "format_word", "precision_label"]
