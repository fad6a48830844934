"""ImageNet (ILSVRC-2012) in its standard folder layout, read with Pillow.

``--data-dir`` holds ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (the validation
images sorted into class folders, as the usual ``valprep.sh`` leaves them); the class
index is the position of the wnid in the sorted list of ``train/`` folders, and ``val/``
must have the same folders.  Files ending in .JPEG/.jpeg/.jpg/.png (any case) count.

ImageNet does not fit on a device, so unlike CIFAR-10 it is decoded on the fly by a
``torch.utils.data.DataLoader`` with worker processes (``--workers`` per rank).
:class:`LoaderData` offers the same ``batches()``/``num_batches()``/``len()`` as
:class:`~ttq_core.data.device.DeviceData`, so the trainer and ``analyze`` use either,
including the per-rank shards under torchrun (same permutation on every rank, rank r
takes positions r::world: the semantics of ``DistributedSampler(drop_last=True)``).

Transforms (Pillow only; torchvision is not needed), on uint8 RGB images:

* train: RandomResizedCrop(S) — area fraction uniform in [0.08, 1], log-uniform aspect
  ratio in [3/4, 4/3], 10 tries then a center crop, as torchvision — bilinear resize to
  S×S, then a horizontal flip with probability 1/2;
* val: resize the shorter side to round(S·256/224) (bilinear), center crop S×S.

S is the model's input size (224) unless ``--image-size`` says otherwise.  Normalisation
uses the standard ImageNet channel statistics (the torchvision constants) and happens
on the device.  Every random draw of a sample comes from a seed fixed by the epoch's
generator and the image index, so an epoch's batches do not depend on the number of
workers, and ``--resume`` continues with the same augmentation.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import DataError
from .cifar10 import balanced_subset
from .device import BatchSource, shard_order

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageIndex", "scan_imagenet", "LoaderData",
           "ImageNetSplits", "imagenet_splits"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per channel, [0, 1] pixels (torchvision's constants)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SUFFIXES = (".jpeg", ".jpg", ".png")
_HINT = "point --data-dir at a folder holding train/<wnid>/*.JPEG and val/<wnid>/*.JPEG"
RESIZE_RATIO = 256 / 224  # validation: shorter side = S·256/224 before the center crop


@dataclass(frozen=True)
class ImageIndex:
    """One split: image file paths and their int64 labels, in sorted (class, file) order."""

    paths: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx: np.ndarray) -> "ImageIndex":
        return ImageIndex([self.paths[i] for i in idx], self.labels[idx])


def _images_in(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.path for e in it
                      if e.is_file() and e.name.lower().endswith(_SUFFIXES))


def _class_folders(split_dir: Path) -> list[str]:
    with os.scandir(split_dir) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


def scan_imagenet(root) -> tuple[tuple[str, ...], ImageIndex, ImageIndex]:
    """(classes, train, val) of the tree at ``root``; a one-line DataError when it is not
    the standard layout."""
    if root is None:
        raise DataError(f"--dataset imagenet needs --data-dir; {_HINT}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"ImageNet folder {str(root)!r} does not exist or is not a folder; {_HINT}")
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise DataError(f"{root} has no {' or '.join(m + '/' for m in missing)} folder; {_HINT}")
    classes = _class_folders(root / "train")
    if not classes:
        raise DataError(f"{root / 'train'} holds no class folders; {_HINT}")
    val_classes = _class_folders(root / "val")
    if val_classes != classes:
        only_train = sorted(set(classes) - set(val_classes))
        only_val = sorted(set(val_classes) - set(classes))
        parts = []
        if only_train:
            parts.append(f"only in train/: {', '.join(only_train[:5])}"
                         + (f" (+{len(only_train) - 5} more)" if len(only_train) > 5 else ""))
        if only_val:
            parts.append(f"only in val/: {', '.join(only_val[:5])}"
                         + (f" (+{len(only_val) - 5} more)" if len(only_val) > 5 else ""))
        raise DataError(f"{root}: train/ and val/ class folders differ ({'; '.join(parts)}); "
                        f"sort the validation images into the same <wnid> folders as train/")
    splits = {}
    for split in ("train", "val"):
        paths: list[str] = []
        labels: list[int] = []
        for label, wnid in enumerate(classes):
            files = _images_in(root / split / wnid)
            if split == "train" and not files:
                raise DataError(f"{root / split / wnid} holds no images (.JPEG/.jpg/.png); "
                                f"remove the folder or restore its images")
            paths.extend(files)
            labels.extend([label] * len(files))
        if not paths:
            raise DataError(f"{root / split} holds no images (.JPEG/.jpg/.png); {_HINT}")
        splits[split] = ImageIndex(paths, np.asarray(labels, dtype=np.int64))
    return tuple(classes), splits["train"], splits["val"]


# --------------------------------------------------------------------------- transforms


def _open_rgb(path: str):
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Exception as exc:
        raise DataError(f"image {path} cannot be decoded ({type(exc).__name__}: {exc}); "
                        f"replace or remove the file") from None


def random_resized_box(width: int, height: int, rng: np.random.Generator,
                       scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(left, top, w, h) of a RandomResizedCrop box, as torchvision chooses it."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    in_ratio = width / height  # fallback: the largest center crop within the ratio range
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def load_train_image(path: str, size: int, seed: Sequence[int]) -> np.ndarray:
    """RandomResizedCrop(size) + random horizontal flip; uint8 (3, size, size)."""
    from PIL import Image
    rng = np.random.default_rng(list(seed))
    im = _open_rgb(path)
    left, top, w, h = random_resized_box(im.width, im.height, rng)
    im = im.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def load_val_image(path: str, size: int) -> np.ndarray:
    """Shorter side to round(size·256/224), center crop size×size; uint8 (3, size, size)."""
    from PIL import Image
    im = _open_rgb(path)
    short = int(round(size * RESIZE_RATIO))
    scale = short / min(im.width, im.height)
    w, h = max(size, int(round(im.width * scale))), max(size, int(round(im.height * scale)))
    im = im.resize((w, h), Image.BILINEAR)
    left, top = (w - size) // 2, (h - size) // 2
    im = im.crop((left, top, left + size, top + size))
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


class _FolderDataset(torch.utils.data.Dataset):
    """Map-style dataset whose keys are ``(index, seed)``: seed ``None`` means the
    validation transform, else the training one with that seed (chosen by the sampler
    in the main process, so results do not depend on the workers)."""

    def __init__(self, index: ImageIndex, size: int):
        self.index, self.size = index, size

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key):
        i, seed = key
        path = self.index.paths[i]
        arr = (load_val_image(path, self.size) if seed is None
               else load_train_image(path, self.size, seed))
        return torch.from_numpy(np.ascontiguousarray(arr)), int(self.index.labels[i])


def _one_line(exc: BaseException) -> str:
    """The DataError message of an exception re-raised from a DataLoader worker (whose
    text carries the worker's whole traceback)."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else str(exc)
    prefix = "DataError: "
    return last.split(prefix, 1)[1] if prefix in last else last


class LoaderData(BatchSource):
    """One ImageNet split, decoded by a DataLoader, with DeviceData's batch interface."""

    def __init__(self, index: ImageIndex, size: int, mean: Sequence[float], std: Sequence[float],
                 device: str | torch.device = "cpu", workers: int = 4, channels_last: bool = False):
        super().__init__(mean, std, device, channels_last)
        self.index, self.size, self.workers = index, int(size), int(workers)
        self.labels = torch.as_tensor(index.labels)
        self.dataset = _FolderDataset(index, self.size)

    def batches(self, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False,
                shard: tuple[int, int] = (0, 1), batch_range: tuple[int, int] | None = None,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(inputs float32 normalised, targets int64)`` on the device
        (``shard``, ``batch_range``: as :meth:`DeviceData.batches`)."""
        gen_device = generator.device if generator is not None else "cpu"
        order = shard_order(len(self), shard, shuffle=shuffle, drop_last=drop_last,
                            generator=generator, device=gen_device).cpu().tolist()
        if drop_last:
            order = order[:len(order) - len(order) % batch_size]
        if batch_range is not None:
            order = order[batch_range[0] * batch_size:batch_range[1] * batch_size]
        if augment:
            base = int(torch.randint(2 ** 62, (1,), generator=generator, device=gen_device))
            keys = [(i, (base, i)) for i in order]
        else:
            keys = [(i, None) for i in order]
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=batch_size, sampler=keys, num_workers=self.workers,
            pin_memory=self.device.type == "cuda", drop_last=drop_last,
            persistent_workers=False)
        it = iter(loader)
        while True:
            try:
                x, y = next(it)
            except StopIteration:
                return
            except DataError as e:
                raise DataError(_one_line(e)) from None
            yield (self.normalize(x.to(self.device, non_blocking=True)),
                   y.to(self.device, non_blocking=True))


@dataclass
class ImageNetSplits:
    train: LoaderData
    val: LoaderData
    classes: tuple[str, ...]
    normalization: dict
    source: str


def imagenet_splits(data_dir, *, image_size: int = 224, device: str | torch.device = "cpu",
                    workers: int = 4, limit_train: int | None = None,
                    limit_test: int | None = None, seed: int = 0,
                    channels_last: bool = False) -> ImageNetSplits:
    """Scan the tree and return both splits ready for the trainer (``seed`` is unused:
    subsets are fixed and class-balanced, as for CIFAR-10)."""
    classes, train, val = scan_imagenet(data_dir)
    if limit_train:
        train = train.subset(balanced_subset(train.labels, limit_train))
    if limit_test:
        val = val.subset(balanced_subset(val.labels, limit_test))
    mk = lambda idx: LoaderData(idx, image_size, IMAGENET_MEAN, IMAGENET_STD, device,  # noqa: E731
                                workers, channels_last)
    norm = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "computed_on": "standard ImageNet train-split constants (torchvision), "
                           "[0, 1] pixel values"}
    return ImageNetSplits(mk(train), mk(val), classes, norm,
                          f"ImageNet folder tree {Path(data_dir).expanduser().resolve()}")
