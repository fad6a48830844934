"""CIFAR-10 data: loading from any local copy (or a download), caching, subsets,
and device-resident batches with on-device augmentation."""

from ttq_core.data.cifar10 import (
    CIFAR10_MD5,
    CIFAR10_URL,
    ArraySplit,
    CifarArrays,
    balanced_subset,
    default_cache_dir,
    default_data_dir,
    load_cifar10,
)
from ttq_core.data.device import DeviceData, random_crop_flip
from ttq_core.data.splits import CifarSplit, cifar10_split

__all__ = [
    "cifar10_split",
    "CifarSplit",
    "DeviceData",
    "random_crop_flip",
    "ArraySplit",
    "CifarArrays",
    "load_cifar10",
    "balanced_subset",
    "default_data_dir",
    "default_cache_dir",
    "CIFAR10_URL",
    "CIFAR10_MD5",
]
