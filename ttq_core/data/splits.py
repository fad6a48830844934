"""One CIFAR-10 split as model-ready, device-resident inputs: the one place where "measure
this checkpoint on that split" gets its images (``ttq-report``, ``ttq-sweep``, the
Python API and the benchmarks all come here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .cifar10 import balanced_subset, load_cifar10
from .device import DeviceData

SPLITS = ("train", "test")


@dataclass
class CifarSplit:
    """A CIFAR-10 split decoded once (uint8 images, labels), normalised on demand.

    ``arrays`` is the whole loaded dataset (its ``source`` names the data, its train split
    gives the default normalisation); ``images``/``labels`` are the split, or its fixed
    class-balanced subset of ``limit`` images."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    arrays: Any

    @classmethod
    def load(cls, split: str = "test", data_dir=None, *, limit: int | None = None,
             progress: bool = True) -> "CifarSplit":
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        arrays = load_cifar10(data_dir, progress=progress)
        part = arrays.train if split == "train" else arrays.test
        images, labels = part.images, part.labels
        if limit:
            idx = balanced_subset(labels, limit)
            images, labels = images[idx], labels[idx]
        return cls(split, images, labels, arrays)

    @property
    def source(self) -> str:
        return self.arrays.source

    def __len__(self) -> int:
        return len(self.labels)

    def normalization_for(self, checkpoint: dict | None) -> dict[str, list[float]]:
        """The checkpoint's recorded ``normalization``, else the train split's statistics."""
        norm = (checkpoint or {}).get("normalization")
        if norm:
            return {"mean": _floats(norm["mean"]), "std": _floats(norm["std"])}
        mean, std = self.arrays.channel_stats()
        return {"mean": _floats(mean), "std": _floats(std)}

    def device_data(self, normalization: dict | None = None,
                    device: str | torch.device = "cpu") -> DeviceData:
        """The split on ``device``, normalised with ``normalization`` ({"mean", "std"};
        default: the train split's statistics)."""
        norm = normalization if normalization is not None else self.normalization_for(None)
        return DeviceData(self.images, self.labels, _floats(norm["mean"]), _floats(norm["std"]),
                          device)

    def for_checkpoint(self, checkpoint: dict | None,
                       device: str | torch.device = "cpu") -> DeviceData:
        """The split as ``checkpoint`` (a checkpoint dict, or None) expects its inputs."""
        return self.device_data(self.normalization_for(checkpoint), device)


def cifar10_split(split: str = "test", normalization: dict | None = None, data_dir=None, *,
                  limit: int | None = None, device: str | torch.device = "cpu",
                  progress: bool = True) -> DeviceData:
    """The ``split`` ("train" or "test") of CIFAR-10 on ``device``, normalised.

    ``normalization``: ``{"mean": [r, g, b], "std": [r, g, b]}`` as stored in a checkpoint;
    default: the train split's own statistics.  ``limit``: a fixed class-balanced subset.
    """
    return CifarSplit.load(split, data_dir, limit=limit, progress=progress).device_data(
        normalization, device)


def _floats(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values]
