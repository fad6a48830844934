"""Which torch device a run uses: the one place ``--device`` values are resolved."""

from __future__ import annotations

import torch

from .errors import ConfigError
from .launch import local_device


def default_device() -> torch.device:
    """CUDA if available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> :func:`default_device`; otherwise the named device, checked.

    Under torchrun a plain ``cuda`` becomes ``cuda:LOCAL_RANK`` (one GPU per rank).  A name
    torch does not know, CUDA asked for where there is none (or a CUDA index past the
    last device), or another device type this machine lacks (``mps`` off a Mac, ``meta``)
    is a :class:`ConfigError` (one line for the CLIs)."""
    if name is None or str(name) == "auto":
        dev = default_device()
    else:
        try:
            dev = torch.device(name)
        except (RuntimeError, TypeError):
            raise ConfigError(f"--device: {name!r} is not a device (try cpu, cuda, cuda:0)") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda requested but no CUDA device is available; "
                              "use --device cpu")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s), numbered from 0")
        if dev.type not in ("cpu", "cuda") and not _available(dev.type):
            raise ConfigError(f"--device {name}: no {dev.type} device is available here (this "
                              f"toolkit runs on cpu and cuda); use --device cpu or cuda")
    return local_device(dev)


def _available(kind: str) -> bool:
    """Whether torch can use a device of type ``kind`` (``mps``, ``xpu``, ...) here: its
    backend module says so (``torch.backends.mps``, ``torch.xpu``); a type without such a
    module (``meta``, ``lazy``: no real computation) counts as unavailable."""
    for module in (getattr(torch.backends, kind, None), getattr(torch, kind, None)):
        check = getattr(module, "is_available", None)
        if callable(check):
            try:
                return bool(check())
            except Exception:  # a backend that cannot even be probed is not usable
                return False
    return False


__all__ = ["default_device", "resolve_device"]
