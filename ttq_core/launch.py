"""What the launcher (torchrun) says about this process: rank, world size, local rank.

Read from ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` alone (no process group needed), so
both device resolution (:mod:`ttq_core.devices`) and the process-group plumbing
(:mod:`ttq_core.distributed`) build on it and import points one way:
``distributed`` → ``devices`` → ``launch``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Launch", "launch_info", "local_device"]


@dataclass(frozen=True)
class Launch:
    """What the launcher (torchrun) says about this process."""

    rank: int
    world_size: int
    local_rank: int


def launch_info() -> Launch | None:
    """``Launch`` from torchrun's environment variables, or ``None`` when not launched by
    it (or launched with a single process)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank_ = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank_)))
    except ValueError:
        return None
    return Launch(rank_, world, local) if world > 1 else None


def local_device(device: torch.device) -> torch.device:
    """Under torchrun, a CUDA device without an index becomes ``cuda:LOCAL_RANK``."""
    info = launch_info()
    if info is not None and device.type == "cuda" and device.index is None:
        return torch.device("cuda", info.local_rank)
    return device
