"""Where a report may be written, and how it is put there without losing anyone's files.

A report folder (``ttq-report --out``, the sweep's ``report/``) is written only when it is

* missing (it is created),
* an empty folder, or
* an earlier report of this toolkit: it holds the marker file :data:`MARKER`, whose
  manifest lists every file that report wrote, and nothing else.

Anything else is refused with one line, before anything is measured, and left untouched:
a run folder with checkpoints, a home folder, an earlier report where someone added their
own notes, a report written before the marker existed (its files cannot be told from a
user's notes or measurements beside them), a symbolic link (the report would replace the
link, not write where it points: give the real folder), and the current folder or a
folder that holds it (``.``, ``..``: a report replaces its folder as a whole).

The new report is built in a temporary folder beside the destination (named
``.<name>.<random>.tmp``; it gets the marker first, so it is recognisable), then moved
into place: a reader sees the old complete report or the new complete one.  The whole
build holds an exclusive lock (``.<name>.lock`` beside the folder, see
:mod:`ttq_core.folder_lock`), so two reports racing for one folder cannot interleave: the
second is refused naming the first's PID.  Under that lock, leftovers of killed earlier
builds for the same destination are removed: folders named exactly as this module names
them for ``<name>`` (``.<name>.<8 random characters>.tmp``, ``.<name>.old-<pid>``) that
carry the marker.  Such a folder is only ever made under ``<name>``'s lock, so while this
process holds that lock its writer is provably dead; another destination's folders
(``.<name>.y.<random>.tmp`` belongs to ``<name>.y``) never match.  The finished folder
gets the permissions the umask gives (``mkdtemp`` makes 0700 folders).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ttq_core.errors import OutputError
from ttq_core.folder_lock import exclusive_lock
from ttq_core.io import atomic_write_text

MARKER = ".ttq-report.json"  # in every report folder: {"format": ..., "files": [...]}
MARKER_FORMAT = "ttq-report-folder"


def build_atomically(out_dir: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Run ``write(folder)`` on a fresh temporary folder beside ``out_dir`` and move the
    result into place; refuse (one-line :class:`OutputError`) when ``out_dir`` is not
    missing, empty or an earlier report; return ``out_dir``."""
    shown = Path(out_dir)
    check_destination(shown)  # before the parent is created or the lock taken
    out_dir = Path(os.path.abspath(shown))  # "./r/" and "r" are one destination
    parent = _parent(shown)
    with exclusive_lock(parent / f".{out_dir.name}.lock", f"report folder {shown}"):
        check_destination(shown)
        _remove_leftovers(out_dir)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
        except OSError as e:
            raise OutputError(f"cannot write in {parent}: {e.strerror}") from None
        try:
            _write_marker(tmp, [])
            write(tmp)
            _write_marker(tmp, _listing(tmp))
            os.chmod(tmp, 0o777 & ~_umask())
            _replace(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out_dir


def check_destination(out_dir: Path) -> None:
    """Raise :class:`OutputError` unless ``out_dir`` may receive a report (module doc)."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        raise OutputError(f"--out {out_dir} is a symbolic link (to {os.readlink(out_dir)}); a "
                          f"report replaces its folder as a whole, so it would replace the "
                          f"link: give the real folder as --out, or remove the link")
    full = os.path.abspath(out_dir)
    if os.path.dirname(full) == full:
        raise OutputError(f"--out {out_dir} is the root folder; give a new folder for the report")
    if _holds(full, os.getcwd()):
        raise OutputError(f"--out {out_dir} is the current folder or holds it; a report "
                          f"replaces its folder as a whole: give a new subfolder, e.g. "
                          f"--out {Path(out_dir) / 'report'}")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputError(f"--out {out_dir} is a file, not a folder; choose another --out")
    try:
        present = _listing(out_dir)
    except OSError as e:
        raise OutputError(f"cannot read --out {out_dir}: {e.strerror}") from None
    if not present:
        return
    written = _manifest(out_dir)
    if written is None and _looks_like_unmarked_report(out_dir):
        raise OutputError(f"--out {out_dir} holds a report written before report folders were "
                          f"marked (no {MARKER}), so its files cannot be told from yours; "
                          f"nothing was written: move or delete it, or choose another --out")
    if written is None:
        shown = ", ".join(present[:4]) + (f", … ({len(present)} files)" if len(present) > 4 else "")
        raise OutputError(f"--out {out_dir} is not empty and is not a report folder of this "
                          f"toolkit (it holds {shown}); nothing was written: choose a new or "
                          f"empty folder")
    foreign = [p for p in present if p not in written and p != MARKER]
    if foreign:
        raise OutputError(f"--out {out_dir} is an earlier report, but holds files the report "
                          f"did not write ({', '.join(foreign[:4])}); nothing was written: move "
                          f"them out or choose another --out")


def _holds(folder: str, path: str) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (both absolute)."""
    try:
        return os.path.commonpath([os.path.realpath(folder), os.path.realpath(path)]) == \
            os.path.realpath(folder)
    except ValueError:
        return False


def _parent(out_dir: Path) -> Path:
    parent = Path(os.path.abspath(out_dir)).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"--out {out_dir}: {parent} is a file, not a folder") from None
    except OSError as e:
        raise OutputError(f"--out {out_dir}: cannot create {parent}: {e.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out_dir}: {parent} is not writable")
    return parent


def _listing(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


UNMARKED_INDEX = {"analysis.json": "ttq-report", "sweep.json": "ttq-sweep"}


def _looks_like_unmarked_report(folder: Path) -> bool:
    """A report written before the marker existed: ``report.html`` beside this toolkit's
    ``analysis.json``/``sweep.json`` (by its ``format`` field).  Only the error message
    depends on it: such a folder is refused like any other unmarked one."""
    if not (folder / "report.html").is_file():
        return False
    for index, fmt in UNMARKED_INDEX.items():
        data = _json_file(folder / index)
        if isinstance(data, dict) and data.get("format") == fmt:
            return True
    return False


def _json_file(path: Path):
    """The JSON content of the regular file ``path``, or None when it is missing, not a
    regular file (a FIFO planted as a marker must not block), too large or not JSON."""
    from ttq_core.errors import ConfigError
    from ttq_core.user_files import parse_json, read_text
    try:
        return parse_json(read_text(path, str(path)), str(path))
    except (OSError, ConfigError):
        return None


def _manifest(folder: Path) -> set[str] | None:
    """The paths an earlier report wrote, or None when ``folder`` is not a report."""
    data = _json_file(folder / MARKER)
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT or \
            not isinstance(data.get("files"), list):
        return None
    return {str(f) for f in data["files"]}


def _write_marker(folder: Path, files: list[str]) -> None:
    atomic_write_text(folder / MARKER, json.dumps(
        {"format": MARKER_FORMAT, "files": [f for f in files if f != MARKER],
         "note": "written by the TTQ toolkit; lets a later report replace this folder"},
        indent=1))


def leftover_names(name: str) -> re.Pattern:
    """The exact names of the temporary (``tempfile.mkdtemp``: 8 characters of
    ``[a-z0-9_]``) and old folders a build of destination ``name`` makes beside it."""
    return re.compile(rf"\.{re.escape(name)}\.(?:[a-z0-9_]{{8}}\.tmp|old-[0-9]+)")


def _remove_leftovers(out_dir: Path) -> None:
    """Remove temporary/old folders of killed builds for ``out_dir`` (its lock held, so
    their writer is dead: module doc)."""
    parent, name = out_dir.parent, out_dir.name
    pattern = leftover_names(name)
    for p in parent.iterdir():
        if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink() and \
                (p / MARKER).is_file():
            shutil.rmtree(p, ignore_errors=True)


def _replace(new: Path, dest: Path) -> None:
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    try:
        os.replace(new, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
