"""One writer per output folder: an exclusive, advisory ``flock`` on a lock file.

``exclusive_lock(lock_path, what)`` holds the lock for the body of a ``with`` block.  A
second process asking for the same lock fails at once with a one-line
:class:`~ttq_core.errors.OutputError` naming the holder's PID (written into the file).
The kernel drops a ``flock`` when its holder dies, however it dies (``kill -9``
included), so a lock file left by a killed process is not held by anyone and the next
process simply takes it over: there is no stale-lock guessing by PID or age.

The lock file is opened without following links (``O_NOFOLLOW``) and used only when it
is this toolkit's: a regular file with one name (no hard link to someone's file) holding
nothing or a PID.  A symbolic link, a hard link or a file with other content at the lock
path is refused with one line and left as it is: a lock never writes into a file the
toolkit did not create.

The lock file is removed on release.  Removing a lock file is racy in general (a waiter
may have opened the old file); the *lock-then-verify* loop below closes that race: after
locking, a process checks that the path still names the file it locked, and retries if
not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import Iterator

from .errors import OutputError


@contextlib.contextmanager
def exclusive_lock(lock_path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on ``lock_path`` (created if missing) for the ``with`` body.

    ``what`` names the guarded thing in the error, e.g. ``"run folder runs/x"``."""
    path = Path(lock_path)
    fd = _acquire(path, what)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            if os.lstat(path).st_ino == os.fstat(fd).st_ino:  # still ours: remove it
                path.unlink()
        os.close(fd)


def _acquire(path: Path, what: str) -> int:
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise OutputError(f"the lock file {path} is a symbolic link, not a lock of this "
                                  f"toolkit; nothing was written: remove the link") from None
            raise OutputError(f"cannot create the lock file {path}: {e.strerror}") from None
        foreign = _not_a_lock_file(fd)
        if foreign:
            os.close(fd)
            raise OutputError(f"the lock file {path} {foreign}, not a lock of this toolkit; "
                              f"nothing was written: move it away")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _holder(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"{what} is in use by another process{holder}; wait for "
                                  f"it to finish or choose another output folder") from None
            raise OutputError(f"cannot lock {path}: {e.strerror}") from None
        try:  # lock-then-verify: the path may have been unlinked by the previous holder
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise OutputError(f"could not lock {path} (it keeps being replaced)")


def _not_a_lock_file(fd: int) -> str:
    """Why the open file ``fd`` is not a lock file this toolkit wrote ("" when it is one):
    a regular file, one link, at most 32 bytes of a decimal PID (or empty)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_nlink != 1:
        return "has other names (a hard link)"
    if st.st_size > 32:
        return "holds other data"
    text = os.pread(fd, 32, 0).strip()
    if text and not text.isdigit():
        return "holds other data"
    return ""


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (PID {text})" if text.isdigit() else ""
