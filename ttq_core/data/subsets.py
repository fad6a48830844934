"""Fixed class-balanced subsets of a labelled split (:func:`balanced_subset`).

Deterministic (no randomness), so ``--limit-train``/``--limit-test`` pick the same
images on every run and every machine; used for CIFAR-10 and ImageNet alike.
"""

from __future__ import annotations

import numpy as np

from ttq_core.errors import DataError

__all__ = ["balanced_subset"]


def balanced_subset(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of a fixed class-balanced subset of ``n`` items, sorted ascending.

    Round-robin over the classes (ascending label order), each class giving its items
    in stored order; no randomness.  ``n >= len(labels)`` gives all indices.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"balanced_subset needs a 1-D label array, got shape {labels.shape}")
    n = int(n)
    if n <= 0:
        raise DataError(f"subset size must be positive, got {n}; pass a size of at least 1")
    total = labels.shape[0]
    if n >= total:
        return np.arange(total, dtype=np.int64)
    per_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    # Item j of class k is taken in round j; within a round classes go in label order.
    rounds = np.concatenate([np.arange(len(ix)) for ix in per_class])
    class_pos = np.concatenate([np.full(len(ix), k) for k, ix in enumerate(per_class)])
    indices = np.concatenate(per_class)
    order = np.lexsort((class_pos, rounds))
    return np.sort(indices[order[:n]]).astype(np.int64)
