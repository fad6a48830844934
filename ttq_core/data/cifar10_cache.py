"""The decoded-array cache: ``<cache_dir>/arrays/cifar10-<key>.npz``.

Owns the cache key (a hash of the cache format version, the source kind, the resolved
source path and the size and mtime of every file read, so a changed source is decoded
again), reading an entry back (validated; an unreadable entry is deleted with a warning
and rebuilt) and writing one atomically (a failure to write only warns).  Nothing here
writes beside the source data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .cifar10_arrays import _NUM_CLASSES, _SPLITS, ArraySplit, CifarArrays
from .cifar10_decode import _OFFICIAL_FILES
from .cifar10_sources import _IMAGE_SUFFIXES, _apply_umask

_CACHE_FORMAT = 1  # bump when the decoding or the npz layout changes


def _cache_key(kind: str, path: Path) -> str:
    h = hashlib.sha256()
    h.update(f"cifar10 v{_CACHE_FORMAT} {kind} {path.resolve()}\n".encode())
    if kind == "image_dir":
        files = sorted(
            p for s in _SPLITS for p in (path / s).glob("*/*") if p.suffix.lower() in _IMAGE_SUFFIXES
        )
    elif kind == "official_dir":
        files = [path / f for f in _OFFICIAL_FILES]
    else:
        files = [path]
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path) if f != path else '.'} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _load_cache(file: Path, source: str) -> CifarArrays | None:
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            train = ArraySplit(z["train_images"], z["train_labels"])
            test = ArraySplit(z["test_images"], z["test_labels"])
            classes = tuple(str(c) for c in z["classes"])
        for split in (train, test):
            ok = (
                split.images.dtype == np.uint8 and split.images.ndim == 4 and split.images.shape[1:] == (3, 32, 32)
                and split.labels.dtype == np.int64 and split.labels.shape == (split.images.shape[0],)
            )
            if not ok:
                raise ValueError("unexpected array shapes or dtypes")
        if len(classes) != _NUM_CLASSES:
            raise ValueError("unexpected class list")
    except Exception as exc:
        warnings.warn(f"CIFAR-10 array cache {file} is unreadable ({exc}); deleting and rebuilding it", stacklevel=3)
        try:
            file.unlink()
        except OSError:
            pass
        return None
    return CifarArrays(train, test, classes, source)


def _save_cache(file: Path, arrays: CifarArrays) -> None:
    tmp: Path | None = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{file.stem}.", suffix=".npz.tmp", dir=file.parent)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                train_images=arrays.train.images,
                train_labels=arrays.train.labels,
                test_images=arrays.test.images,
                test_labels=arrays.test.labels,
                classes=np.asarray(arrays.classes, dtype=np.str_),
            )
        _apply_umask(tmp)
        os.replace(tmp, file)
        tmp = None
    except OSError as exc:
        warnings.warn(f"cannot write the CIFAR-10 array cache {file} ({exc}); set TTQ_CACHE_DIR to a writable folder",
                      stacklevel=3)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
