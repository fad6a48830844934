"""Reading the small JSON/TOML files a user names: energy models, threshold plans.

Assumptions stated once:

* Such a file is a *regular* file.  A FIFO, a device or a socket given in its place is
  refused with one line instead of blocking on it forever (the file is opened with
  ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a path swapped
  between a check and the open cannot slip through); a folder is refused the same way.
* It is small: at most :data:`MAX_BYTES` (a cost model or a plan is a few kB; a larger
  file is a wrong path, not a configuration).
* Its text is UTF-8, and its nesting is shallow enough for Python's parsers: a document
  nested deeper than they recurse (``[[[[…]]]]`` 200,000 deep) is one line, not a
  ``RecursionError``.

Every failure but a missing file is ``error(f"{what}: …")`` (a
:class:`~ttq_core.errors.ConfigError` subclass the caller chooses); a missing file raises
:class:`FileNotFoundError`, which callers turn into their own line (e.g. one listing the
shipped cost models).
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from .errors import ConfigError

MAX_BYTES = 16 * 1024 * 1024  # 16 MiB


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe (FIFO)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def read_text(path: str | os.PathLike, what: str, *, error: type[ConfigError] = ConfigError,
              limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (module doc for what is refused)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # FileNotFoundError passes to the caller
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} is a {_kind(st.st_mode)}, not a regular file; give a file")
        if st.st_size > limit:
            raise error(f"{what} is {st.st_size:,} bytes, more than the {limit:,} a "
                        f"configuration file may have; is it the right file?")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise error(f"{what} grew past {limit:,} bytes while being read")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 text (byte {e.start})") from None


def parse_json(text: str, what: str, *, error: type[ConfigError] = ConfigError) -> Any:
    """``json.loads(text)`` with one-line errors (syntax, nesting too deep)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON (line {e.lineno}: {e.msg})") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply to parse; a configuration file is a few "
                    f"levels deep") from None


def parse_toml(text: str, what: str, *, error: type[ConfigError] = ConfigError) -> Any:
    """``tomllib.loads(text)`` with one-line errors (syntax, nesting too deep, no TOML
    reader on Python 3.10 without ``tomli``)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise error(f"{what}: reading TOML needs Python 3.11+ or the tomli package; use "
                        f"a .json file or pip install tomli") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "no detail"
        raise error(f"{what} is not valid TOML ({first})") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply to parse; a configuration file is a few "
                    f"levels deep") from None


__all__ = ["MAX_BYTES", "read_text", "parse_json", "parse_toml"]
