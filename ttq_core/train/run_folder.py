"""The run folder a ``ttq-train`` run owns: its lock, the files it writes, creating the
folder and cleaning what a killed save left behind."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from ..errors import OutputError
from ..io import atomic_write_text

RUN_LOCK = ".ttq-train.lock"  # in the run folder while a process trains it
RUN_FILES = ("last.pt", "best.pt", "log.jsonl")  # what a run folder's writer owns
EPOCH_FOLDER = "epochs"  # --keep-epochs: one checkpoint per epoch in OUT/epochs/


def epoch_file(epoch: int) -> str:
    """The run-folder path of epoch ``epoch``'s checkpoint (1-based) under --keep-epochs."""
    return f"{EPOCH_FOLDER}/epoch-{epoch:03d}.pt"


def _write_log(path: Path, history: list[dict]) -> None:
    """Rewrite ``log.jsonl`` from ``history`` atomically (used on resume)."""
    atomic_write_text(path, "".join(json.dumps(entry) + "\n" for entry in history))


def _make_run_folder(out: Path) -> bool:
    """Create ``out`` if missing (one-line errors); return whether it was created here."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder; choose another --out")
    if out.is_dir():
        return False
    try:
        out.mkdir(parents=True)
    except FileExistsError:
        raise OutputError(f"--out {out}: a parent of it is a file, not a folder") from None
    except OSError as e:
        raise OutputError(f"--out {out}: cannot create it ({e.strerror})") from None
    return True


def _remove_stale_temp_files(out: Path) -> None:
    """Remove the temporary files a killed save left in ``out`` (its lock held, so their
    writer is dead): exactly the names :func:`ttq_core.io.atomic_open` gives a run file,
    ``.<file>.<8 random characters of tempfile.mkstemp>.tmp``, and only plain files;
    anything else (``.last.pt.notes.tmp``) is not the toolkit's and stays."""
    stale = re.compile("|".join(rf"\.{re.escape(n)}\.[a-z0-9_]{{8}}\.tmp" for n in RUN_FILES))
    for tmp in out.iterdir():
        if stale.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
            with contextlib.suppress(OSError):
                tmp.unlink()
