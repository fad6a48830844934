"""The dataset registry: for each ``--dataset`` name, how training gets its splits and how a
report gets the images it measures on.  ``ttq-train`` and ``ttq-report`` both read it, so a
new dataset is one entry here.

Training: either ``loader`` (``(data_dir, progress=...)`` -> arrays with ``train``/``test``
splits, held in memory) with ``num_classes``, or ``prepare`` (``(cfg, device)`` ->
``ttq_core.train.loop.Split``) for data streamed from disk.  Measurement: ``measurement``
(``(data_dir, *, limit, device, workers, image_size, progress)`` ->
:class:`MeasurementData`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .data import load_cifar10
from .errors import ConfigError


@dataclass
class MeasurementData:
    """The images a report measures on: ``data_for(loaded)`` gives them normalised as that
    checkpoint (a ``LoadedModel``, or None) expects; ``input_shape`` is None for the
    architecture's own."""

    data_for: Callable
    images: int
    split_name: str
    source: str
    input_shape: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    loader: Callable | None   # (data_dir, progress=...) -> CifarArrays-like train/test splits
    num_classes: int | None   # None: read from the data (``prepare``'s ``Split.num_classes``)
    prepare: Callable | None = None      # (cfg, device) -> Split, data not array-resident
    measurement: Callable | None = None  # (data_dir, *, limit, device, ...) -> MeasurementData


def _cifar10_measurement(data_dir, *, limit=None, device="cpu", progress=True,
                         **_) -> MeasurementData:
    from .data import CifarSplit
    split = CifarSplit.load("test", data_dir, limit=limit, progress=progress)

    def data_for(ld):
        return split.for_checkpoint(ld.checkpoint if ld is not None else None, device)

    return MeasurementData(data_for, len(split), "CIFAR-10 test split", split.source)


def _imagenet_measurement(data_dir, *, limit=None, device="cpu", workers=4, image_size=None,
                          **_) -> MeasurementData:
    from .data.imagenet import imagenet_splits
    if data_dir is None:
        raise ConfigError("--dataset imagenet needs --data-dir (an ILSVRC-2012 tree with "
                          "train/<wnid>/ and val/<wnid>/)")
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    size = image_size or 224
    splits = imagenet_splits(data_dir, image_size=size, device=device, workers=workers,
                             limit_test=limit)
    shape = (3, size, size) if image_size else None
    return MeasurementData(lambda ld: splits.val, len(splits.val), "ImageNet val split",
                           splits.source, shape)


def _prepare_imagenet(cfg, device):
    from .data.imagenet import imagenet_splits
    from .models import model_spec
    from .train.loop import Split
    size = cfg.image_size or model_spec(cfg.arch).input_size[-1]
    s = imagenet_splits(cfg.data_dir, image_size=size, device=device, workers=cfg.workers,
                        limit_train=cfg.limit_train, limit_test=cfg.limit_test, seed=cfg.seed,
                        channels_last=device.type == "cuda")
    return Split(s.train, s.val, s.normalization, s.source, len(s.classes))


DATASETS = {
    "cifar10": DatasetSpec(load_cifar10, 10, measurement=_cifar10_measurement),
    # ILSVRC-2012 layout train/<wnid>/*.JPEG, val/<wnid>/*.JPEG (ttq_core.data.imagenet)
    "imagenet": DatasetSpec(None, None, _prepare_imagenet, _imagenet_measurement),
}


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"--dataset: unknown dataset {name!r}; known: "
                          f"{', '.join(DATASETS)}") from None


__all__ = ["DATASETS", "DatasetSpec", "MeasurementData", "dataset_spec"]
