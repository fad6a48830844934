"""Names of the networks in one report: distinct labels, and distinct file-name slugs.

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


__all__ = ["distinct_names", "distinct_slugs", "slugify"]
