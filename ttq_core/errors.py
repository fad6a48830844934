"""User-facing errors of the toolkit.

Every error a user can cause (a bad path, a corrupted checkpoint, an unreadable data
folder, a bad flag value) is raised as a :class:`TTQError` subclass with a one-line
message that says what is wrong and what to do next.  The command-line entry points
catch exactly these and print them without a traceback; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class TTQError(Exception):
    """Base class of all errors meant to be shown to a user as one line."""


class DataError(TTQError):
    """The dataset cannot be found, read, downloaded or verified."""


class CheckpointError(TTQError):
    """A checkpoint or state_dict file cannot be read or does not fit the model."""


class ConfigError(TTQError):
    """An option or configuration value is invalid."""


class TrainingDiverged(TTQError):
    """The training loss became NaN or infinite."""


class OutputError(TTQError):
    """An output file or folder cannot be written: not allowed, not writable, in use by
    another process, or holding files this toolkit did not write."""


def describe_os_error(e: OSError) -> str:
    """One line for an OS error: what failed, on which path (``[Errno 28] ...`` → words)."""
    what = e.strerror or str(e)
    if e.filename is not None:
        return f"{e.filename}: {what}"
    return what
