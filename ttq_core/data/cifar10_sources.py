"""Where CIFAR-10 comes from: recognising a copy on disk, reading it, downloading one.

Owns the kinds of source :func:`ttq_core.data.cifar10.load_cifar10` accepts (the official
``cifar-10-batches-py`` folder or ``cifar-10-python.tar.gz`` archive, an image-folder
tree ``train/<class>/*`` + ``test/<class>/*``, or a ``.tar.gz`` of one, each also inside
a folder), their detection (:func:`_resolve_source`), one reader per kind (an archive is
read in one streaming pass, without extracting), and the checksum-verified download of
the official archive (the only network access of the package).  Turning the bytes read
into arrays is :mod:`ttq_core.data.cifar10_decode`'s business.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable

from ttq_core.errors import DataError

from .cifar10_arrays import _SPLITS, ArraySplit
from .cifar10_decode import _OFFICIAL_FILES, _arrays_from_image_items, _arrays_from_official

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
OFFICIAL_ARCHIVE_NAME = "cifar-10-python.tar.gz"
OFFICIAL_DIR_NAME = "cifar-10-batches-py"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
_HINT = "pass --data-dir or set TTQ_DATA_DIR to a CIFAR-10 copy"
_MEMBER_RE = re.compile(r"^(?:(?P<top>[^/]+)/)?(?P<split>train|test)/(?P<cls>[^/]+)/(?P<file>[^/]+)$")


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
        # gzip is unpacked by GzipFile rather than tarfile's "r|gz": tarfile ends the
        # iteration silently when the cut falls inside a member header, whereas GzipFile
        # raises EOFError when the stream lacks its end marker (drained below).
        with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz, \
                tarfile.open(fileobj=gz, mode="r|") as tar, tqdm(
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
            while gz.read(1 << 20):  # to the gzip trailer: a truncated stream raises EOFError
                pass
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


def _download(folder: Path, progress: bool, *, url: str, md5: str,
              fetch: Callable[[str, object, bool], None]) -> Path:
    """Download ``url`` with ``fetch`` into ``folder``/cifar-10-python.tar.gz, checked against ``md5``.

    The caller passes the URL, checksum and fetch function (``load_cifar10`` passes its
    module's ``CIFAR10_URL``, ``CIFAR10_MD5`` and ``_fetch_url``).
    """
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
                fetch(url, f, progress)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DataError(
                    f"download of {url} failed ({reason}); {_HINT} (a local copy of the data)"
                ) from None
        digest = _md5_of(tmp)
        if digest != md5:
            raise DataError(
                f"download of {url} has md5 {digest}, expected {md5}; retry, or {_HINT}"
            )
        _apply_umask(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return final
