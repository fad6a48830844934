"""Where one output file a user names may be written (``ttq-report --json``, ``ttq-plan --out``).

The file is written atomically (:func:`ttq_core.io.atomic_open`), and only when its path is

* missing (its folder is created), or
* an earlier file of the same kind written by this toolkit: a JSON file whose ``format``
  field is the one the command writes (``"ttq-report"``, ``"ttq-threshold-plan"``), so
  rerunning a command replaces its own earlier output.

Everything else is refused with one line before any work, and left untouched:

* one of the command's inputs (the same file under any name: a hard link or a symbolic
  link to it counts), e.g. ``ttq-plan fp.pt --out fp.pt``;
* any other existing file (a checkpoint, someone's notes), a folder, a symbolic link
  (replacing it would replace the link, not write where it points), a path under a file;
* a path inside a folder the same command replaces as a whole (``ttq-report --json`` in
  its own ``--out``: the report folder is swapped in at the end, which would drop it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import ConfigError, OutputError


def check_output_file(path: str | os.PathLike, flag: str, json_format: str, *,
                      inputs: Iterable[str | os.PathLike | None] = (),
                      replaced_folder: str | os.PathLike | None = None) -> Path:
    """Raise a one-line error unless ``path`` may receive the command's output (module
    doc); return it.  ``flag`` names the option in the error (``"--json"``)."""
    path = Path(path)
    here = f"{flag} {path}"
    for given in inputs:
        if given is not None and _same_file(path, Path(given)):
            raise ConfigError(f"{here} is the input {given}; writing there would destroy it: "
                              f"give another file name")
    if replaced_folder is not None and _inside(path, Path(replaced_folder)):
        raise ConfigError(f"{here} lies inside the report folder {replaced_folder}, which is "
                          f"replaced as a whole when the report is complete (it already holds "
                          f"analysis.json): give a file outside it")
    if path.is_symlink():
        raise OutputError(f"{here} is a symbolic link; writing would replace the link, not the "
                          f"file it points to: give the real file name, or remove the link")
    parent = Path(os.path.abspath(path)).parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"{here}: {parent} is a file, not a folder")
    if path.is_dir():
        raise ConfigError(f"{here} is a folder; give a file name")
    if path.exists() and not _written_by_toolkit(path, json_format):
        raise OutputError(f"{here} already exists and is not a {json_format} file this toolkit "
                          f"wrote; nothing was written: move it away or give another name")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: Path, folder: Path) -> bool:
    p, f = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([p, f]) == f


def _written_by_toolkit(path: Path, json_format: str) -> bool:
    """Whether ``path`` is a regular JSON file whose ``format`` is ``json_format``."""
    from .user_files import parse_json, read_text
    try:
        data = parse_json(read_text(path, str(path)), str(path))
    except (OSError, ConfigError):
        return False
    return isinstance(data, dict) and data.get("format") == json_format


__all__ = ["check_output_file"]
