"""Atomic file writes: a temporary file in the target's folder, flushed, then renamed.

A reader (or a crash) sees either the old file or the complete new one, never a
half-written file; on any error the temporary file is removed and the old file stays.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def _published(path: Path, mode: str, publish) -> Iterator[IO]:
    """Write a temporary file beside ``path`` (flushed, synced, given the umask's mode);
    on clean exit ``publish(tmp, path)`` puts it in place.  The temporary file never
    outlives the call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit it replaces ``path``."""
    with _published(Path(path), mode, os.replace) as f:
        yield f


@contextlib.contextmanager
def exclusive_create(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Like :func:`atomic_open`, but never replaces anything: the complete file appears at
    ``path`` only if nothing (no file, folder or link, even a dangling one) is there when
    it is published (``os.link`` fails on an existing name, so there is no race with
    another writer).  Otherwise ``FileExistsError`` and the temporary file is removed."""
    path = Path(path)
    if os.path.lexists(path):  # refuse before any work
        raise FileExistsError(17, "File exists", str(path))
    with _published(path, mode, os.link) as f:
        yield f


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)
