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
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import pickle
import re
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ttq_core.errors import DataError

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

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
OFFICIAL_ARCHIVE_NAME = "cifar-10-python.tar.gz"
OFFICIAL_DIR_NAME = "cifar-10-batches-py"
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_OFFICIAL_FILES = _TRAIN_BATCHES + ("test_batch", "batches.meta")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
_SPLITS = ("train", "test")
_NUM_CLASSES = 10
_CACHE_FORMAT = 1  # bump when the decoding or the npz layout changes
_POOL_MIN_FILES = 2000  # decode in a process pool from this many images on
_POOL_CHUNK = 500
_HINT = "pass --data-dir or set TTQ_DATA_DIR to a CIFAR-10 copy"


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- subset


def balanced_subset(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of a fixed class-balanced subset of ``n`` items, sorted ascending.

    Round-robin over the classes (ascending label order), each class giving its items
    in stored order; no randomness.  ``n >= len(labels)`` gives all indices.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"balanced_subset needs a 1-D label array, got shape {labels.shape}")
    n = int(n)
    if n <= 0:
        raise DataError(f"subset size must be positive, got {n}; pass a size of at least 1")
    total = labels.shape[0]
    if n >= total:
        return np.arange(total, dtype=np.int64)
    per_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    # Item j of class k is taken in round j; within a round classes go in label order.
    rounds = np.concatenate([np.arange(len(ix)) for ix in per_class])
    class_pos = np.concatenate([np.full(len(ix), k) for k, ix in enumerate(per_class)])
    indices = np.concatenate(per_class)
    order = np.lexsort((class_pos, rounds))
    return np.sort(indices[order[:n]]).astype(np.int64)


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


_MEMBER_RE = re.compile(r"^(?:(?P<top>[^/]+)/)?(?P<split>train|test)/(?P<cls>[^/]+)/(?P<file>[^/]+)$")


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


# --------------------------------------------------------------------------- source detection


def _is_archive_name(p: Path) -> bool:
    return p.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _is_official_dir(p: Path) -> bool:
    return all((p / f).is_file() for f in _OFFICIAL_FILES)


def _is_image_tree(p: Path) -> bool:
    return all((p / s).is_dir() for s in _SPLITS)


def _visible_entries(p: Path) -> list[Path]:
    return sorted(e for e in p.iterdir() if not e.name.startswith("."))


def _resolve_source(path: Path) -> tuple[str, Path] | None:
    """(kind, path) for a usable source at/under ``path``; None for an empty folder.

    kind is one of 'official_dir', 'image_dir', 'archive'.  Raises DataError for
    content that is not recognised.
    """
    if path.is_file():
        if _is_archive_name(path) or tarfile.is_tarfile(path):
            return "archive", path
        raise DataError(
            f"{path} is not a .tar.gz archive of CIFAR-10; pass a cifar-10-python.tar.gz, an image-tree .tar.gz, "
            "or a folder via --data-dir/TTQ_DATA_DIR"
        )
    if _is_official_dir(path):
        return "official_dir", path
    if _is_image_tree(path):
        return "image_dir", path
    entries = _visible_entries(path)
    if not entries:
        return None
    sub = path / OFFICIAL_DIR_NAME
    if sub.is_dir() and _is_official_dir(sub):
        return "official_dir", sub
    if (path / OFFICIAL_ARCHIVE_NAME).is_file():
        return "archive", path / OFFICIAL_ARCHIVE_NAME
    trees = [e for e in entries if e.is_dir() and (_is_official_dir(e) or _is_image_tree(e))]
    if len(trees) == 1:
        return ("official_dir" if _is_official_dir(trees[0]) else "image_dir"), trees[0]
    archives = [e for e in entries if e.is_file() and _is_archive_name(e)]
    if len(archives) == 1 and not trees:
        return "archive", archives[0]
    if len(trees) + len(archives) > 1:
        found = ", ".join(e.name for e in trees + archives)
        raise DataError(f"{path} holds several candidate CIFAR-10 copies ({found}); pass the one to use with --data-dir")
    shown = ", ".join(e.name for e in entries[:5]) + (", ..." if len(entries) > 5 else "")
    raise DataError(
        f"{path} holds no CIFAR-10 data (found {shown}); expected {OFFICIAL_DIR_NAME}/, {OFFICIAL_ARCHIVE_NAME}, "
        "train/<class>/ + test/<class>/ image folders or one .tar.gz of them; fix --data-dir/TTQ_DATA_DIR"
    )


# --------------------------------------------------------------------------- readers


def _read_official_dir(path: Path) -> tuple[ArraySplit, ArraySplit, tuple[str, ...]]:
    blobs = {}
    for name in _OFFICIAL_FILES:
        try:
            blobs[name] = (path / name).read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {path / name} ({exc.strerror or exc}); check the file permissions") from None
    return _arrays_from_official(blobs, str(path))


def _read_image_dir(path: Path, progress: bool) -> tuple[ArraySplit, ArraySplit, tuple[str, ...]]:
    per_split: dict[str, dict[str, list[tuple[str, bytes | None]]]] = {}
    for split in _SPLITS:
        classes: dict[str, list[tuple[str, bytes | None]]] = {}
        for cls_dir in _visible_entries(path / split):
            if not cls_dir.is_dir():
                continue
            classes[cls_dir.name] = [
                (str(f), None)
                for f in _visible_entries(cls_dir)
                if f.suffix.lower() in _IMAGE_SUFFIXES and f.is_file()
            ]
        per_split[split] = classes
    return _arrays_from_image_items(per_split, str(path), progress)


def _read_archive(path: Path, progress: bool) -> tuple[ArraySplit, ArraySplit, tuple[str, ...]]:
    """One streaming pass over a .tar.gz: official batches or an image tree."""
    from tqdm import tqdm

    official: dict[str, bytes] = {}
    per_split: dict[str, dict[str, list[tuple[str, bytes | None]]]] = {s: {} for s in _SPLITS}
    tops: set[str | None] = set()
    n_images = 0
    current = "<archive header>"
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar, tqdm(
            total=path.stat().st_size, desc=f"reading {path.name}", unit="B", unit_scale=True,
            disable=not progress, leave=False,
        ) as bar:
            for member in tar:
                current = member.name
                bar.update(raw.tell() - bar.n)
                if not member.isfile():
                    continue
                name = member.name.removeprefix("./")
                base = name.rsplit("/", 1)[-1]
                if base.startswith("."):
                    continue
                if base in _OFFICIAL_FILES:
                    official[base] = tar.extractfile(member).read()
                    continue
                m = _MEMBER_RE.match(name)
                if m and base.lower().endswith(_IMAGE_SUFFIXES):
                    tops.add(m.group("top"))
                    data = tar.extractfile(member).read()
                    per_split[m.group("split")].setdefault(m.group("cls"), []).append((f"{path.name}:{name}", data))
                    n_images += 1
            current = "<end of archive>"
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(
            f"{path} is corrupted or truncated (at member {current}: {type(exc).__name__}: {exc}); "
            "replace it with a fresh copy"
        ) from None
    if all(f in official for f in _OFFICIAL_FILES):
        return _arrays_from_official(official, str(path))
    if n_images:
        if len(tops) > 1:
            raise DataError(
                f"{path} holds image trees under several top-level folders ({sorted(map(str, tops))}); "
                "repack it with a single train/ + test/ tree"
            )
        return _arrays_from_image_items(per_split, str(path), progress)
    if official:
        missing = ", ".join(f for f in _OFFICIAL_FILES if f not in official)
        raise DataError(f"{path} lacks official CIFAR-10 members ({missing}); replace it with a fresh official copy")
    raise DataError(
        f"{path} holds neither {OFFICIAL_DIR_NAME}/ batches nor train/<class>/ + test/<class>/ images; "
        "pass a CIFAR-10 copy via --data-dir/TTQ_DATA_DIR"
    )


# --------------------------------------------------------------------------- download


def _apply_umask(path: Path) -> None:
    """Give a mkstemp file (mode 0600) the permissions a plain open() would have."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _fetch_url(url: str, dest, progress: bool) -> None:
    """Write the body of ``url`` into the binary file object ``dest`` (the only network access)."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=60) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with tqdm(total=total, desc=f"downloading {url.rsplit('/', 1)[-1]}", unit="B", unit_scale=True,
                  disable=not progress) as bar:
            while True:
                block = resp.read(1 << 20)
                if not block:
                    break
                dest.write(block)
                bar.update(len(block))


def _md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(folder: Path, progress: bool) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder} for the download ({exc.strerror or exc}); {_HINT}") from None
    final = folder / OFFICIAL_ARCHIVE_NAME
    fd, tmp_name = tempfile.mkstemp(prefix=f".{OFFICIAL_ARCHIVE_NAME}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                _fetch_url(CIFAR10_URL, f, progress)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DataError(
                    f"download of {CIFAR10_URL} failed ({reason}); {_HINT} (a local copy of the data)"
                ) from None
        digest = _md5_of(tmp)
        if digest != CIFAR10_MD5:
            raise DataError(
                f"download of {CIFAR10_URL} has md5 {digest}, expected {CIFAR10_MD5}; retry, or {_HINT}"
            )
        _apply_umask(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return final


# --------------------------------------------------------------------------- cache


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
        resolved = ("archive", _download(path, progress))

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
