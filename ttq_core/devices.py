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
    torch does not know, or CUDA asked for where there is none, is a :class:`ConfigError`
    (one line for the CLIs)."""
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
    return local_device(dev)


__all__ = ["default_device", "resolve_device"]
