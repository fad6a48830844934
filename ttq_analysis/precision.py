"""Full float32 while measuring: the same counts on every device.

TF32 (on by default for cuDNN convolutions on Ampere and later GPUs) rounds the inputs of
float32 convolutions and matrix products to a 10-bit mantissa.  That moves pre-activations
across zero, so ReLU zeros, activation sparsity, measured operation counts and even the
accuracy of a CUDA analysis differed from a CPU one (355 of 10,988 numbers of one
``analysis.json``, issue 20).  :func:`full_float32` switches TF32 off for matrix products
and cuDNN, and restores both flags afterwards, also when the body raises.  ``analyze``
runs under it; on the CPU the flags change nothing.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["full_float32"]


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Context manager (and decorator): ``torch.backends.cuda.matmul.allow_tf32`` and
    ``torch.backends.cudnn.allow_tf32`` are False inside, as they were after."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn
