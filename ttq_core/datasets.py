"""The dataset registry: for each ``--dataset`` name, how training gets its splits and how a
report gets the images it measures on.  ``ttq-train`` and ``ttq-report`` both read it, so a
new dataset is one entry here.

Training: either ``loader`` (``(data_dir, progress=...)`` -> arrays with ``train``/``test``
splits, held in memory) with ``num_classes``, or ``prepare`` (``(cfg, device)`` ->
:class:`Split`) for data streamed from disk.  Measurement: ``measurement``
(``(data_dir, *, limit, device, workers, image_size, progress)`` ->
:class:`MeasurementData`, which also offers the input normalisations the data can name and
a few training images for batch-norm re-estimation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .data import load_cifar10
from .data.device import DeviceData  # noqa: F401  (Split's field type)
from .errors import ConfigError
from .normalization import (IMAGENET_MEAN, IMAGENET_STD, Normalization, NormalizationRequest,
                            choose_normalization, renormalized)


@dataclass
class MeasurementData:
    """The images a report measures on.

    ``batches_for(normalization)``: the images normalised so (a ``BatchSource``);
    ``input_shape``: None for the architecture's own; ``sample_shape``: (C, H, W) of the
    images themselves (the shape a network outside the registry is traced with);
    ``default_normalization``: what an input that records none gets unless the user says;
    ``named_normalizations``: what ``--normalization NAME`` can pick here;
    ``calibration(n, normalization)``: a fixed class-balanced set of ``n`` *training*
    images (a ``BatchSource``), for batch-norm re-estimation; ``calibration_name`` says
    which split they come from.
    """

    batches_for: Callable[[Normalization], object]
    images: int
    split_name: str
    source: str
    input_shape: tuple[int, int, int] | None = None
    sample_shape: tuple[int, int, int] = (3, 32, 32)
    default_normalization: Normalization | None = None
    named_normalizations: dict = field(default_factory=dict)
    calibration: Callable[[int, Normalization], object] | None = None
    calibration_name: str = "training split"

    def normalization_for(self, loaded=None,
                          request: NormalizationRequest | None = None) -> Normalization:
        """The normalisation ``loaded`` (a ``LoadedModel`` or None) is measured with: its
        checkpoint's record, else ``request``, else the default
        (:func:`ttq_core.normalization.choose_normalization`)."""
        recorded = ((loaded.checkpoint if loaded is not None else None) or {}).get("normalization")
        return choose_normalization(recorded, request, self.named_normalizations,
                                    self.default_normalization)

    def data_for(self, loaded=None, request: NormalizationRequest | None = None):
        """The images normalised as ``loaded`` expects (see :meth:`normalization_for`)."""
        return self.batches_for(self.normalization_for(loaded, request))


@dataclass
class Split:
    """A training run's data: its train and test batches, the normalisation applied to both,
    where the data came from, and (data read from disk) the number of classes.  Defined
    here, beside the registry whose ``prepare`` returns it; ``ttq_core.train.setup`` and
    ``ttq_core.train.loop`` re-export it."""

    train: "DeviceData"    # or anything with the same batches()/num_batches()/len()
    test: "DeviceData"
    normalization: dict
    source: str
    num_classes: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    loader: Callable | None   # (data_dir, progress=...) -> CifarArrays-like train/test splits
    num_classes: int | None   # None: read from the data (``prepare``'s ``Split.num_classes``)
    prepare: Callable | None = None      # (cfg, device) -> Split, data not array-resident
    measurement: Callable | None = None  # (data_dir, *, limit, device, ...) -> MeasurementData


def _cifar10_measurement(data_dir, *, limit=None, device="cpu", progress=True,
                         **_) -> MeasurementData:
    from .data import CifarSplit
    from .data.cifar10 import balanced_subset
    split = CifarSplit.load("test", data_dir, limit=limit, progress=progress)
    stats = split.normalization_for(None)
    cifar = Normalization(tuple(stats["mean"]), tuple(stats["std"]),
                          "the CIFAR-10 train split's per-channel mean and std, as ttq-train "
                          "computes and records them")
    imagenet = Normalization(IMAGENET_MEAN, IMAGENET_STD, "torchvision's ImageNet mean and std")
    default = Normalization(cifar.mean, cifar.std,
                            "default: " + cifar.origin + " (the file records none; pass "
                            "--normalization or --mean/--std if it was trained otherwise)")

    def calibration(n, norm):
        train = split.arrays.train
        idx = balanced_subset(train.labels, min(int(n), len(train.labels)))
        part = CifarSplit("train", train.images[idx], train.labels[idx], split.arrays)
        return part.device_data(norm.as_dict(), device)

    return MeasurementData(lambda norm: split.device_data(norm.as_dict(), device), len(split),
                           "CIFAR-10 test split", split.source, sample_shape=(3, 32, 32),
                           default_normalization=default,
                           named_normalizations={"cifar10": cifar, "imagenet": imagenet},
                           calibration=calibration, calibration_name="CIFAR-10 train split")


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
    imagenet = Normalization(IMAGENET_MEAN, IMAGENET_STD, "torchvision's ImageNet mean and std")
    default = Normalization(IMAGENET_MEAN, IMAGENET_STD, "default: " + imagenet.origin +
                            " (the file records none; pass --mean/--std if it was trained "
                            "otherwise)")

    def calibration(n, norm):
        train = imagenet_splits(data_dir, image_size=size, device=device, workers=workers,
                                limit_train=int(n)).train
        return renormalized(train, norm)

    return MeasurementData(lambda norm: renormalized(splits.val, norm), len(splits.val),
                           "ImageNet val split", splits.source, shape,
                           sample_shape=(3, size, size), default_normalization=default,
                           named_normalizations={"imagenet": imagenet},
                           calibration=calibration, calibration_name="ImageNet train split")


def _prepare_imagenet(cfg, device):
    from .data.imagenet import imagenet_splits
    from .models import model_spec
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
