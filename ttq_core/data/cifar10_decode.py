"""Bytes to CIFAR-10 arrays: the two encodings a CIFAR-10 copy can hold.

Owns the decoding of the official pickled batches (through a restricted unpickler that
resolves only the numpy names needed to rebuild arrays, so a tampered pickle cannot run
code) and of 32x32 image files (with Pillow, in a process pool for large sets), each
ending in train/test :class:`~ttq_core.data.cifar10_arrays.ArraySplit` s and the class
names.  Where the bytes come from (folders, archives, the download) is
:mod:`ttq_core.data.cifar10_sources`' business.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ttq_core.errors import DataError

from .cifar10_arrays import _NUM_CLASSES, _SPLITS, ArraySplit

_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_OFFICIAL_FILES = _TRAIN_BATCHES + ("test_batch", "batches.meta")
_POOL_MIN_FILES = 2000  # decode in a process pool from this many images on
_POOL_CHUNK = 500


# --------------------------------------------------------------------------- unpickling


def _numpy_reconstruction_globals() -> dict[tuple[str, str], object]:
    try:  # numpy >= 2
        from numpy._core import multiarray as _ma
        from numpy._core import numeric as _num
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as _ma  # type: ignore[no-redef]
        from numpy.core import numeric as _num  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _ma._reconstruct
    # protocol-5 pickles of contiguous arrays reconstruct through _frombuffer
    frombuffer = getattr(_num, "_frombuffer", None)
    if frombuffer is not None:
        for mod in ("numpy.core.numeric", "numpy._core.numeric"):
            allowed[(mod, "_frombuffer")] = frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy names needed to rebuild arrays."""

    _allowed = _numpy_reconstruction_globals()

    def find_class(self, module: str, name: str):  # noqa: D401
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None


def _restricted_load(data: bytes, what: str):
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{what} is not a plain CIFAR-10 pickle ({exc}); replace it with a fresh official copy") from None
    except Exception as exc:  # truncated or garbage bytes raise many kinds
        raise DataError(f"{what} cannot be unpickled ({type(exc).__name__}: {exc}); replace it with a fresh official copy") from None


def _get(d: dict, key: str):
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def _parse_batch(data: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    obj = _restricted_load(data, what)
    if not isinstance(obj, dict):
        raise DataError(f"{what} does not hold a CIFAR-10 batch dict; replace it with a fresh official copy")
    arr, labels = _get(obj, "data"), _get(obj, "labels")
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != 3072 or labels is None:
        raise DataError(f"{what} lacks a (N, 3072) 'data' array or 'labels'; replace it with a fresh official copy")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if labels.shape[0] != arr.shape[0]:
        raise DataError(f"{what} has {arr.shape[0]} images but {labels.shape[0]} labels; replace it with a fresh official copy")
    if labels.size and (labels.min() < 0 or labels.max() >= _NUM_CLASSES):
        raise DataError(f"{what} has labels outside 0..9; replace it with a fresh official copy")
    images = np.ascontiguousarray(arr.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32))
    return images, labels


def _parse_meta(data: bytes, what: str) -> tuple[str, ...]:
    obj = _restricted_load(data, what)
    names = _get(obj, "label_names") if isinstance(obj, dict) else None
    if not isinstance(names, (list, tuple)) or len(names) != _NUM_CLASSES:
        raise DataError(f"{what} does not list {_NUM_CLASSES} 'label_names'; replace it with a fresh official copy")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _arrays_from_official(blobs: dict[str, bytes], where: str) -> tuple[ArraySplit, ArraySplit, tuple[str, ...]]:
    parts = [_parse_batch(blobs[name], f"{where}: {name}") for name in _TRAIN_BATCHES]
    test_images, test_labels = _parse_batch(blobs["test_batch"], f"{where}: test_batch")
    classes = _parse_meta(blobs["batches.meta"], f"{where}: batches.meta")
    train = ArraySplit(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, ArraySplit(test_images, test_labels), classes


# --------------------------------------------------------------------------- image decoding


def _decode_one(data: bytes, name: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            if im.size != (32, 32):
                raise DataError(f"image {name} is {im.size[0]}x{im.size[1]}, not 32x32; remove or resize it")
            arr = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"image {name} cannot be decoded ({type(exc).__name__}: {exc}); replace the file or the data copy") from None
    return arr.transpose(2, 0, 1)


def _decode_chunk(items: Sequence[tuple[str, bytes | None]]) -> tuple[np.ndarray | None, str | None]:
    """Decode (name, bytes) pairs; bytes None means read the file at path ``name``.

    Returns (array, None) or (None, error message): errors travel back as text so that
    a worker never has to pickle an exception.
    """
    out = np.empty((len(items), 3, 32, 32), dtype=np.uint8)
    try:
        for i, (name, data) in enumerate(items):
            if data is None:
                try:
                    data = Path(name).read_bytes()
                except OSError as exc:
                    raise DataError(f"image {name} cannot be read ({exc.strerror or exc}); check the file permissions") from None
            out[i] = _decode_one(data, name)
    except DataError as exc:
        return None, str(exc)
    return out, None


def _decode_images(items: list[tuple[str, bytes | None]], progress: bool, desc: str) -> np.ndarray:
    from tqdm import tqdm

    if not items:
        return np.empty((0, 3, 32, 32), dtype=np.uint8)
    chunks = [items[i : i + _POOL_CHUNK] for i in range(0, len(items), _POOL_CHUNK)]
    workers = min(os.cpu_count() or 1, len(chunks))
    results: list[np.ndarray] = []
    with tqdm(total=len(items), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        if len(items) < _POOL_MIN_FILES or workers < 2:
            stream: Iterable = map(_decode_chunk, chunks)
            pool = None
        else:
            pool = multiprocessing.get_context().Pool(workers)
            stream = pool.imap(_decode_chunk, chunks)
        try:
            for chunk, (arr, err) in zip(chunks, stream):
                if err is not None:
                    raise DataError(err)
                results.append(arr)
                bar.update(len(chunk))
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    return np.concatenate(results)


def _arrays_from_image_items(
    per_split: dict[str, dict[str, list[tuple[str, bytes | None]]]], where: str, progress: bool
) -> tuple[ArraySplit, ArraySplit, tuple[str, ...]]:
    """Build both splits from {split: {class: [(name, bytes|None), ...]}}."""
    names = {split: sorted(per_split.get(split, {})) for split in _SPLITS}
    for split in _SPLITS:
        if len(names[split]) != _NUM_CLASSES:
            shown = ", ".join(names[split]) or "none"
            raise DataError(
                f"{where}: {split}/ has {len(names[split])} class folders ({shown}), expected {_NUM_CLASSES}; "
                "point --data-dir at a CIFAR-10 image tree"
            )
    if names["train"] != names["test"]:
        raise DataError(
            f"{where}: train/ and test/ class folders differ ({names['train']} vs {names['test']}); "
            "fix the image tree so both splits have the same 10 classes"
        )
    classes = tuple(names["train"])
    splits = {}
    for split in _SPLITS:
        items: list[tuple[str, bytes | None]] = []
        labels: list[int] = []
        for label, cls in enumerate(classes):
            entries = sorted(per_split[split][cls], key=lambda e: e[0])
            if not entries:
                raise DataError(f"{where}: {split}/{cls} holds no images; fix the image tree")
            items.extend(entries)
            labels.extend([label] * len(entries))
        images = _decode_images(items, progress, f"decoding {split}")
        splits[split] = ArraySplit(images, np.asarray(labels, dtype=np.int64))
    return splits["train"], splits["test"], classes
