"""CIFAR-10 as uint8 numpy arrays, from whatever copy of the data is at hand.

:func:`load_cifar10` accepts, detected by content:

1. the official python folder ``cifar-10-batches-py`` (or a folder containing it);
2. the official ``cifar-10-python.tar.gz`` archive (or a folder containing it);
3. an image-folder tree ``train/<class>/*.jpg|png`` + ``test/<class>/*`` (or a folder
   containing one);
4. a ``.tar.gz``/``.tgz`` of such a tree, read in one streaming pass without
   extracting (or a folder containing exactly one archive);
5. an empty or missing folder, into which the official archive is downloaded
   (when ``download=True``).

Decoded arrays are cached as ``<cache_dir>/arrays/cifar10-<key>.npz``, where the key
hashes the resolved source path, its size and mtime, so a changed source is decoded
again.  Nothing is ever written beside the source data, except the download of case 5.

This module is the public face of the CIFAR-10 loader: it owns the entry point
:func:`load_cifar10` and the default data and cache folders, and re-exports the rest
from the modules that implement it:

- :mod:`ttq_core.data.cifar10_arrays`: the result types :class:`ArraySplit`, :class:`CifarArrays`;
- :mod:`ttq_core.data.cifar10_sources`: source detection, the readers, the download;
- :mod:`ttq_core.data.cifar10_decode`: pickled batches and image files to arrays;
- :mod:`ttq_core.data.cifar10_cache`: the decoded-array cache;
- :mod:`ttq_core.data.subsets`: :func:`balanced_subset`.

:func:`load_cifar10` looks up the readers, ``CIFAR10_URL``, ``CIFAR10_MD5`` and
``_fetch_url`` here, in this module, so replacing them on this module (as the tests do)
changes what it uses.
"""

from __future__ import annotations

import os
from pathlib import Path

from ttq_core.errors import DataError

from .cifar10_arrays import ArraySplit, CifarArrays
from .cifar10_cache import _cache_key, _load_cache, _save_cache
from .cifar10_sources import (
    _HINT,
    CIFAR10_MD5,
    CIFAR10_URL,
    _download,
    _fetch_url,
    _is_archive_name,
    _read_archive,
    _read_image_dir,
    _read_official_dir,
    _resolve_source,
)
from .subsets import balanced_subset

__all__ = [
    "ArraySplit",
    "CifarArrays",
    "load_cifar10",
    "balanced_subset",
    "default_data_dir",
    "default_cache_dir",
    "CIFAR10_URL",
    "CIFAR10_MD5",
]


# --------------------------------------------------------------------------- paths


def _xdg_cache_home() -> Path:
    env = os.environ.get("XDG_CACHE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache"


def default_data_dir() -> Path:
    """``$TTQ_DATA_DIR`` if set, else ``$XDG_CACHE_HOME/ttq/data/cifar10`` (or ``~/.cache/...``)."""
    env = os.environ.get("TTQ_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return _xdg_cache_home() / "ttq" / "data" / "cifar10"


def default_cache_dir() -> Path:
    """``$TTQ_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/ttq`` (or ``~/.cache/ttq``)."""
    env = os.environ.get("TTQ_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return _xdg_cache_home() / "ttq"


# --------------------------------------------------------------------------- entry point


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> CifarArrays:
    """Load CIFAR-10 as uint8 arrays from ``data_dir`` (see the module docstring)."""
    path = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    if not path.exists():
        if not download:
            raise DataError(f"CIFAR-10 data not found at {path} and download is off; {_HINT}")
        if _is_archive_name(path):  # a missing archive file is a typo, not a download folder
            raise DataError(f"archive {path} does not exist; {_HINT}")
        resolved = None
    elif not (path.is_dir() or path.is_file()):
        raise DataError(f"{path} is neither a file nor a folder; {_HINT}")
    else:
        try:
            resolved = _resolve_source(path)
        except PermissionError as exc:
            raise DataError(f"cannot read {path} ({exc.strerror}); check permissions or {_HINT}") from None
        if resolved is None and not download:
            raise DataError(f"{path} is empty and download is off; {_HINT}, or allow the download")
    if resolved is None:
        resolved = ("archive", _download(path, progress, url=CIFAR10_URL, md5=CIFAR10_MD5,
                                         fetch=_fetch_url))

    kind, src = resolved
    source = str(src)
    try:
        cache_file = cache_root / "arrays" / f"cifar10-{_cache_key(kind, src)}.npz"
    except OSError as exc:
        raise DataError(f"cannot read {src} ({exc.strerror or exc}); check permissions or {_HINT}") from None
    cached = _load_cache(cache_file, source)
    if cached is not None:
        return cached

    if kind == "official_dir":
        train, test, classes = _read_official_dir(src)
    elif kind == "image_dir":
        train, test, classes = _read_image_dir(src, progress)
    else:
        train, test, classes = _read_archive(src, progress)
    arrays = CifarArrays(train=train, test=test, classes=classes, source=source)
    _save_cache(cache_file, arrays)
    return arrays
