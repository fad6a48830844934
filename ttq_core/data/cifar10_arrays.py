"""CIFAR-10 in memory: the result types of :func:`ttq_core.data.cifar10.load_cifar10`.

Owns :class:`ArraySplit` (one split as uint8 images and int64 labels),
:class:`CifarArrays` (both splits, the class names, the source, and the train-set channel
statistics) and the layout constants every CIFAR-10 reader shares (the split names and
the number of classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttq_core.errors import DataError

__all__ = ["ArraySplit", "CifarArrays"]

_SPLITS = ("train", "test")
_NUM_CLASSES = 10


@dataclass(frozen=True)
class ArraySplit:
    """One split: ``images`` uint8 (N, 3, 32, 32) CHW RGB, ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class CifarArrays:
    train: ArraySplit
    test: ArraySplit
    classes: tuple[str, ...]
    source: str

    def channel_stats(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Per-channel mean and std (population) of the train images scaled to [0, 1].

        Computed exactly from a 256-bin histogram per channel, in float64.
        """
        imgs = self.train.images
        if imgs.shape[0] == 0:
            raise DataError("the train split is empty, so channel statistics are undefined; check the data source")
        values = np.arange(256, dtype=np.float64) / 255.0
        means, stds = [], []
        for c in range(3):
            counts = np.bincount(np.ascontiguousarray(imgs[:, c]).ravel(), minlength=256).astype(np.float64)
            total = counts.sum()
            mean = float((counts * values).sum() / total)
            var = float((counts * (values - mean) ** 2).sum() / total)
            means.append(mean)
            stds.append(var ** 0.5)
        return (means[0], means[1], means[2]), (stds[0], stds[1], stds[2])
