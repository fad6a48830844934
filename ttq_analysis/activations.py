"""Streaming measurement of activation sparsity (and measured operations) on real data.

A forward pre-hook on every conv/linear layer sees the layer's input ``x`` and keeps only
per-image numbers: the count of exact zeros of each image's input (``(x == 0)`` summed
over everything but the batch dimension), and, when asked, feeds ``x`` to the layer's
:class:`~ttq_analysis.ternary_ops.MeasuredOps` counter.  No activation tensor outlives its
hook call, so memory stays flat however many batches run; what is kept grows by one
integer per image and layer.  Hooks are removed in ``finally``.

Activation sparsity of an image at a layer = zeros in its input / elements of its input.
A forward hook also counts the zeros of each layer's output as the layer produces it
(before batch norm or ReLU), summed over all images: the write side of the activation-
memory energy (``ttq_analysis.energy``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import torch
from torch import nn

from .ternary_ops import FLOAT32_EXACT, MeasuredOps, indicator


@dataclass
class LayerRecord:
    """What is kept per layer: per-image zero counts and the measured-ops counter."""

    name: str
    numel_per_image: int = 0
    zero_counts: list = field(default_factory=list)   # ints (CPU) or int64 tensors (GPU)
    ops: MeasuredOps | None = None
    out_numel_per_image: int = 0
    out_zeros: int | torch.Tensor = 0                  # zeros of the output, all images
    out_images: int = 0

    def add_output(self, y: torch.Tensor) -> None:
        self.out_numel_per_image = y[0].numel()
        zeros = y.numel() - torch.count_nonzero(y)
        self.out_zeros = self.out_zeros + (int(zeros) if y.device.type == "cpu" else zeros)
        self.out_images += y.shape[0]

    def out_sparsity(self) -> float:
        """Fraction of zeros in the layer's output over all images (NaN if none seen)."""
        if not self.out_images or not self.out_numel_per_image:
            return float("nan")
        return int(self.out_zeros) / (self.out_numel_per_image * self.out_images)

    def add(self, counts: torch.Tensor) -> None:
        # On the CPU keep plain ints: small long-lived tensors between the large freed
        # activation buffers pin the heap (RSS grew ~100 MB per batch on ResNet-20).
        # On a GPU keep device tensors (no sync per batch); the caching allocator is immune.
        if counts.device.type == "cpu":
            self.zero_counts.extend(counts.tolist())
        else:
            self.zero_counts.append(counts)

    def zero_array(self) -> np.ndarray:
        """The per-image zero counts as one int64 array, in the order seen."""
        if not self.zero_counts:
            return np.zeros(0, dtype=np.int64)
        if isinstance(self.zero_counts[0], torch.Tensor):
            return torch.cat(self.zero_counts).cpu().numpy().astype(np.int64)
        return np.asarray(self.zero_counts, dtype=np.int64)

    def per_image_sparsity(self) -> np.ndarray:
        if not self.zero_counts:
            return np.zeros(0)
        if isinstance(self.zero_counts[0], torch.Tensor):
            zeros = torch.cat(self.zero_counts).cpu().numpy().astype(np.float64)
        else:
            zeros = np.asarray(self.zero_counts, dtype=np.float64)
        return zeros / self.numel_per_image


class ActivationProbe:
    """Context manager: while open, every forward of ``model`` records its layers' inputs.

    ``layers``: {name: (module, sign codes or None)} or {name: (module, codes,
    scale_mults)} (``scale_mults``: ``"per_sign"`` for ternary, the default, or
    ``"per_output"`` for binary layers); ``count_ops``: also stream measured operation
    counts (:class:`MeasuredOps`, with ``partial_sums``).
    """

    def __init__(self, layers: dict[str, tuple], count_ops: bool,
                 partial_sums: str = "window"):
        self.records = {name: LayerRecord(name) for name in layers}
        self._layers = layers
        self._count_ops = count_ops
        self._partial_sums = partial_sums
        self._handles: list = []

    def __enter__(self) -> "ActivationProbe":
        try:
            for name, (module, codes, *scale_mults) in self._layers.items():
                record = self.records[name]
                if self._count_ops:
                    record.ops = MeasuredOps(module, codes, partial_sums=self._partial_sums,
                                             scale_mults=(scale_mults or ["per_sign"])[0])
                self._handles.append(module.register_forward_pre_hook(self._hook(record)))
                self._handles.append(module.register_forward_hook(
                    lambda _m, _args, y, record=record: record.add_output(y)))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @staticmethod
    def _hook(record: LayerRecord):
        def hook(module, args):
            x = args[0]
            numel = x[0].numel()
            record.numel_per_image = numel
            # a float 0/1 indicator summed per image is several times faster on CPU than
            # count_nonzero(dim=...); float32 sums of 0/1 are exact below 2**24 per image.
            # The sum runs over the dims of x as laid out (no reshape copy).
            x_ind = indicator(x)
            exact = torch.float32 if numel < FLOAT32_EXACT else torch.float64
            ops = record.ops
            if ops is not None and ops.wants_group_sums:
                # the measured counts need nonzeros per (image, channel group, position):
                # the per-image counts follow from those, one pass over x_ind fewer
                group_sums = ops.group_sums(x_ind)
                nonzero = group_sums.sum(dim=(1, 2, 3), dtype=exact)
            else:
                group_sums = None
                nonzero = x_ind.sum(dim=tuple(range(1, x.dim())), dtype=exact)
            record.add(numel - nonzero.round_().to(torch.int64))
            if ops is not None:  # the same indicator serves the measured counts
                ops.update(x, x_ind=x_ind, group_sums=group_sums)
        return hook


@dataclass
class RunResult:
    """Images seen and, where the data carried labels, how many were classified right."""

    images: int = 0
    labelled: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


def run_batches(model: nn.Module, batches: Iterable, device: torch.device,
                total: int | None = None, progress: bool = True) -> RunResult:
    """Forward every batch through ``model`` (eval, no grad).

    ``batches`` yields ``(inputs, targets or None)``.  Top-1 accuracy is counted where
    targets are given (a by-product: the forward runs anyway).  ``no_grad`` rather than
    ``inference_mode``: the measured-ops counters build cached tensors on first use that
    must stay usable by autograd."""
    from tqdm.auto import tqdm
    result = RunResult()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    model.eval()
    with torch.no_grad():
        for x, y in tqdm(batches, total=total, desc="measuring activations", unit="batch",
                         disable=not progress, leave=False, dynamic_ncols=True):
            x = x.to(device, non_blocking=True)
            out = model(x)
            result.images += x.shape[0]
            if y is not None and out.dim() == 2 and y.shape[:1] == out.shape[:1]:
                correct += (out.argmax(1) == y.to(device)).sum()
                result.labelled += y.shape[0]
    result.correct = int(correct)
    return result


def gather_over_ranks(records: dict[str, LayerRecord], run: RunResult) -> RunResult:
    """Combine what every rank of a process group measured on its block of the data.

    Each rank saw a contiguous block of the batches (``ttq_core.data.device.batch_block``),
    so the per-image zero counts of the ranks, concatenated in rank order, are exactly
    the single-process list; the integer counters (images, measured additions,
    multiplications and effective MACs, labelled and correctly classified images) are
    summed.  Afterwards ``records`` and the returned result are the same on every rank
    and equal to a single process's over all the data.  A no-op without a process group.
    """
    from ttq_core import distributed
    if not distributed.active():
        return run
    mine = {"run": (run.images, run.labelled, run.correct),
            "layers": {name: (rec.numel_per_image, rec.zero_array(),
                              None if rec.ops is None else
                              (rec.ops.images, rec.ops.effective_adds, rec.ops.effective_mults,
                               rec.ops.effective_macs),
                              (rec.out_numel_per_image, int(rec.out_zeros), rec.out_images))
                       for name, rec in records.items()}}
    everyone = distributed.all_gather_objects(mine)
    for name, rec in records.items():
        parts = [r["layers"][name] for r in everyone]
        rec.numel_per_image = max(p[0] for p in parts)
        rec.zero_counts = np.concatenate([p[1] for p in parts]).tolist()
        rec.out_numel_per_image = max(p[3][0] for p in parts)
        rec.out_zeros = sum(p[3][1] for p in parts)
        rec.out_images = sum(p[3][2] for p in parts)
        if rec.ops is not None:
            counts = [p[2] for p in parts if p[2] is not None]
            rec.ops.images = sum(c[0] for c in counts)
            rec.ops.effective_adds = sum(c[1] for c in counts)
            rec.ops.effective_mults = sum(c[2] for c in counts)
            rec.ops.effective_macs = sum(c[3] for c in counts)
    return RunResult(*(sum(r["run"][i] for r in everyone) for i in range(3)))
