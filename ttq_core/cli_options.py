"""Command-line options every toolkit CLI shares, defined once: ``--data-dir``,
``--device``, ``--no-progress``.  Each ``add_*`` adds the option to an argparse parser or
argument group, so a CLI keeps its own help layout while the flag, its default and its
help text stay the same everywhere.  (Options of the analysis layer: ``ttq_analysis.cli_options``.)
"""

from __future__ import annotations

DATA_DIR_HELP = ("data source folder or archive (default: $TTQ_DATA_DIR, else the cache "
                 "folder, downloading on first use)")


def add_data_dir(group, default: str | None = None, help: str = DATA_DIR_HELP) -> None:
    """``--data-dir PATH``."""
    group.add_argument("--data-dir", default=default, metavar="PATH", help=help)


def add_device(group, default: str = "auto") -> None:
    """``--device``: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:N``;
    resolved by :func:`ttq_core.devices.resolve_device`."""
    group.add_argument("--device", default=default,
                       help="auto (CUDA if available, else CPU), cpu, cuda, cuda:N "
                            "(default %(default)s)")


def add_progress(group, help: str = "no progress bars") -> None:
    """``--no-progress``."""
    group.add_argument("--no-progress", action="store_true", help=help)


__all__ = ["add_data_dir", "add_device", "add_progress", "DATA_DIR_HELP"]
