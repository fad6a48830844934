"""One CIFAR-10 split as model-ready, device-resident inputs (for evaluation and analysis)."""

from __future__ import annotations

from typing import Sequence

import torch

from .cifar10 import balanced_subset, load_cifar10
from .device import DeviceData


def cifar10_split(split: str = "test", normalization: dict | None = None, data_dir=None, *,
                  limit: int | None = None, device: str | torch.device = "cpu",
                  progress: bool = True) -> DeviceData:
    """The ``split`` ("train" or "test") of CIFAR-10 on ``device``, normalised.

    ``normalization``: ``{"mean": [r, g, b], "std": [r, g, b]}`` as stored in a checkpoint;
    default: the train split's own statistics.  ``limit``: a fixed class-balanced subset.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    arrays = load_cifar10(data_dir, progress=progress)
    if normalization is None:
        mean, std = arrays.channel_stats()
    else:
        mean, std = normalization["mean"], normalization["std"]
    part = arrays.train if split == "train" else arrays.test
    images, labels = part.images, part.labels
    if limit:
        idx = balanced_subset(labels, limit)
        images, labels = images[idx], labels[idx]
    return DeviceData(images, labels, _floats(mean), _floats(std), device)


def _floats(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values]
