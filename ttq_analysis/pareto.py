"""The (minimum energy, maximum accuracy) Pareto front of a set of points.

Shared by the epoch-by-epoch trade-off of one run (:mod:`ttq_analysis.epoch_energy`) and
the comparison of several runs (:mod:`reports.comparison`, :mod:`reports.method_ranking`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pareto_front(energy: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """For each point, whether it is on the (min energy, max accuracy) Pareto front.

    A point is dominated when another has energy <= and accuracy >= with at least one
    strictly better; NaN points are never on the front.  Duplicates are both kept.
    Units do not matter as long as each sequence has one.
    """
    e = np.asarray(energy, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    if e.shape != a.shape:
        raise ValueError(f"pareto_front: {e.size} energies but {a.size} accuracies")
    out = []
    for i in range(len(e)):
        if np.isnan(e[i]) or np.isnan(a[i]):
            out.append(False)
            continue
        dominated = any(
            j != i and not np.isnan(e[j]) and not np.isnan(a[j])
            and e[j] <= e[i] and a[j] >= a[i] and (e[j] < e[i] or a[j] > a[i])
            for j in range(len(e)))
        out.append(not dominated)
    return out
