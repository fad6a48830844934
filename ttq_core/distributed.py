"""Process-group plumbing for runs under ``torchrun`` (one small module, used by the
trainer and by ``ttq_analysis.analyze``).

``torchrun`` starts one process per rank and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` (and the rendezvous address) in each one's environment.  :func:`session`
reads them and, when ``WORLD_SIZE > 1``, initialises the default process group: NCCL
when the run uses CUDA (each rank on ``cuda:LOCAL_RANK``), gloo on the CPU.  Without
those variables, or with ``WORLD_SIZE=1``, nothing is initialised and every helper here
is a no-op that returns its input, so a single-process run behaves exactly as before
(no process group, bitwise-identical results).

The reduction helpers sum float64/int64 tensors (exact for integer counters) and gather
picklable objects in rank order; every rank gets the same result.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist

from .devices import resolve_device
from .errors import ConfigError
# re-exported: the launcher's view lives in ttq_core.launch (devices needs it too)
from .launch import Launch, launch_info, local_device

__all__ = ["Launch", "launch_info", "session", "active", "rank", "world_size", "is_main",
           "barrier", "all_reduce_sum", "all_reduce_min", "sum_numbers", "all_gather_objects",
           "average_buffers", "rank_prefix", "backend_for", "local_device"]

TIMEOUT = datetime.timedelta(minutes=30)  # a collective waiting longer than this fails


def active() -> bool:
    """True when a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True on rank 0 (and in every single-process run): the rank that writes files."""
    return rank() == 0


def rank_prefix() -> str:
    """``"rank N: "`` when launched with several processes (for error messages), else ``""``."""
    info = launch_info()
    return f"rank {info.rank}: " if info is not None else ""


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def session(device: torch.device | str | None = None) -> Iterator[bool]:
    """Initialise the default process group for a torchrun launch (no-op otherwise).

    Yields True when a group with several ranks is active inside the block.  A group that
    is already initialised (by the caller) is used as it is and left alone.  On a clean
    exit the ranks meet at a barrier and the group is destroyed; on an error nothing
    collective is attempted (the peers may be gone), so the error reaches the caller at
    once and torchrun tears the other ranks down.
    """
    info = launch_info()
    if info is None or not dist.is_available() or dist.is_initialized():
        yield active()
        return
    try:
        dev = resolve_device(device)
    except ConfigError:  # a bad --device: the trainer reports it as a one-line error
        dev = torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    kwargs = {"device_id": dev} if dev.type == "cuda" else {}
    dist.init_process_group(backend=backend_for(dev), timeout=TIMEOUT, **kwargs)
    ok = False
    try:
        yield True
        ok = True
    finally:
        if ok:
            dist.barrier()
            dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def _reduce(t: torch.Tensor, op: str) -> torch.Tensor:
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MIN)
    return t


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks in place (and return it).  Use float64 or int64 tensors for
    sums that must be exact; NCCL needs them on the rank's CUDA device."""
    return _reduce(t, "sum")


def all_reduce_min(t: torch.Tensor) -> torch.Tensor:
    return _reduce(t, "min")


def sum_numbers(values: Sequence[int | float], device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float64) -> list:
    """Sum a short list of Python numbers over ranks in one collective (int64 keeps
    integer counters exact beyond 2**53)."""
    if not active():
        return list(values)
    t = torch.tensor(list(values), dtype=dtype, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather_objects(obj: Any) -> list:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` without a group."""
    if not active():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def average_buffers(module: torch.nn.Module) -> None:
    """Average the floating-point buffers (batch-norm running statistics) over ranks, so
    every rank holds the same model; integer buffers (``num_batches_tracked``) are equal
    on all ranks already and are left alone."""
    if not active():
        return
    n = dist.get_world_size()
    for buf in module.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf.div_(n)
