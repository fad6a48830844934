"""Ternary add/mult counts of conv2d and linear layers, dense and measured on real inputs.

Counting convention
-------------------
A ternary layer's output element is ``Wp·Σ(inputs under + weights) − Wn·Σ(inputs under −
weights)`` (plus the bias, which is not counted here), so inputs under zero weights cost
nothing.  For one output element with ``n = n+ + n−`` nonzero terms, ``n+`` under
``+`` weights and ``n−`` under ``−`` weights:

* additions       = max(n − 1, 0)            (summing n terms, the final Wp/Wn subtraction
                                              included)
* multiplications = [n+ > 0] + [n− > 0]      (one by Wp, one by Wn, when that sum is used)

Worked example, one output with inputs ``[a, 0, c, d]`` and weights ``[+, +, 0, −]``:
the pairs are a·(+), 0·(+), c·0, d·(−).  Dense activations: n+ = 2, n− = 1, n = 3, so
2 additions ((a + 0) then Wp·(·) − Wn·d) and 2 multiplications.  Measured: the zero input
and the zero weight drop out, n+ = 1 (a), n− = 1 (d), n = 2: 1 addition
(Wp·a − Wn·d) and 2 multiplications.  With inputs ``[0, 0, c, d]`` it would be
n+ = 0, n− = 1: 0 additions, 1 multiplication (−Wn·d).

Two modes:

* :func:`dense_ternary_ops` — the paper's assumption: every input, padding included, is
  nonzero, so n± are the numbers of ± weights in the output's filter.  Analytic, per image.
* :class:`MeasuredOps` — n± are the exact numbers of (nonzero input × ± weight) pairs of
  every output element on real inputs, so zero padding, stride, dilation, groups and the
  actual zero pattern of the activations count exactly.  It also gives, for every layer
  (FP or ternary), ``effective_macs``: multiply-accumulates whose input is nonzero, weights
  treated as dense (what zero-skipping hardware does on an FP layer).

All measured totals are over all outputs and all images seen; ``per_image()`` divides by
the number of samples (``x.shape[0]``).

How the measured counts are computed (exactly)
----------------------------------------------
The layer's own op (``F.conv2d`` with its stride/padding/dilation/groups, or ``F.linear``)
runs on 0/1 indicators: ``x_ind = (x != 0)`` and weight indicators, in float32, which is
exact for integers below 2**24.  One conv gives both counts by encoding + weights as 1 and
− weights as ``B``, the smallest power of two above fan_in: ``v = n+ + B·n−``.  The output
is rounded into int32 once and decoded with integer operations: n > 0 ⟺ v ≠ 0,
n− > 0 ⟺ ``v >> log2(B)`` ≠ 0, n+ > 0 ⟺ ``v & (B − 1)`` ≠ 0, each counted with
``count_nonzero`` (about 4× faster on CPU than float ``fmod``/``clamp`` passes).  This is
used when ``B·fan_in < 2**24`` (fan_in ≤ 4095), otherwise two convs (+ and − indicators
separately) are used.  On CUDA, TF32 is switched off around these ops (TF32
would round B) and cuDNN is asked for deterministic algorithms.

``effective_macs`` is linear in ``x_ind``, so no conv is run for it: a *usage map* U (how
many output elements × filter taps read each input position; the input-gradient of the
layer's op with all-ones weights and output gradient) is built once per input shape, and
``effective_macs = Σ_batch Σ_positions x_ind · U`` — computed as ``(Σ_batch x_ind) · U``
in int64, so it is exact for any batch size.  Σ over outputs of n is linear in ``x_ind``
too (a usage map with only the nonzero weights), so the conv output is needed only for
the counts of outputs with n > 0, n+ > 0 and n− > 0: additions = Σ n − #(n > 0).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["dense_ternary_ops", "MeasuredOps", "FLOAT32_EXACT"]

FLOAT32_EXACT = 2 ** 24  # every integer below this is exact in float32


def _check_layer(layer: nn.Module) -> str:
    """'conv' or 'linear'; raise ValueError for anything we cannot count."""
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros":
            raise ValueError(f"padding_mode={layer.padding_mode!r} is not supported: only "
                             f"'zeros' padding has zero (skippable) inputs at the border")
        return "conv"
    if isinstance(layer, nn.Linear):
        return "linear"
    raise ValueError(f"cannot count ternary ops of {type(layer).__name__}: only nn.Conv2d and "
                     f"nn.Linear (and subclasses such as TernaryConv2d/TernaryLinear)")


def _check_codes(layer: nn.Module, codes: torch.Tensor) -> torch.Tensor:
    codes = torch.as_tensor(codes).detach()
    if tuple(codes.shape) != tuple(layer.weight.shape):
        raise ValueError(f"codes have shape {tuple(codes.shape)} but the layer's weight has "
                         f"shape {tuple(layer.weight.shape)}; pass layer.ternary_codes()")
    bad = (codes != 0) & (codes != 1) & (codes != -1)
    if bool(bad.any()):
        raise ValueError("codes must hold only -1, 0 and +1 (use layer.ternary_codes())")
    return codes.to(torch.int8)


def _fan_in(layer: nn.Module) -> int:
    """Terms per output element: in_channels/groups·kh·kw, or in_features."""
    return int(layer.weight[0].numel())


def dense_ternary_ops(layer: nn.Module, codes: torch.Tensor,
                      output_positions: int) -> tuple[int, int]:
    """(adds, mults) per image assuming dense activations (every input nonzero).

    Args:
        layer: an ``nn.Conv2d`` or ``nn.Linear`` (or subclass).
        codes: int8 ternary codes in {-1, 0, +1}, shaped like ``layer.weight``.
        output_positions: output elements per output channel and image —
            ``H_out·W_out`` for a conv, rows of input per sample for a linear layer
            (1 for an ``(N, F)`` input, T for ``(N, T, F)``).

    Per output channel o with ``npos_o`` + and ``nneg_o`` − weights in its filter:
    ``adds_o = max(npos_o + nneg_o − 1, 0)``, ``mults_o = [npos_o > 0] + [nneg_o > 0]``,
    each times ``output_positions``.
    """
    _check_layer(layer)
    codes = _check_codes(layer, codes).flatten(1)
    npos = (codes > 0).sum(1)
    nneg = (codes < 0).sum(1)
    adds = (npos + nneg - 1).clamp(min=0).sum()
    mults = (npos > 0).sum() + (nneg > 0).sum()
    positions = int(output_positions)
    if positions < 0:
        raise ValueError(f"output_positions must be >= 0, got {output_positions}")
    return int(adds) * positions, int(mults) * positions


@contextlib.contextmanager
def _exact_float32(device: torch.device):
    """Keep float32 convs/matmuls in true float32 on CUDA (no TF32)."""
    if device.type != "cuda":
        yield
        return
    old_matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True,
                                        allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_matmul


def _rounded_int32(t: torch.Tensor) -> torch.Tensor:
    """An integer-valued, non-negative float tensor (a conv of 0/1 indicators with 0/1/B
    weights, every partial sum an integer below 2**24) as int32.  On the CPU the
    convolution is a plain sum of exact products (B a power of two is exact even in
    bf16/TF32 math modes), so the values are exact and truncation is rounding; on other
    devices fast algorithms may leave noise far below 0.5, removed by rounding (+0.5, then
    truncation).  May modify ``t``."""
    if t.device.type != "cpu":
        t = t.add_(0.5)
    return t.to(torch.int32)


def _count(t: torch.Tensor) -> int:
    """Number of nonzero entries (``count_nonzero``: one pass, no temporary)."""
    return int(torch.count_nonzero(t))


def indicator(x: torch.Tensor) -> torch.Tensor:
    """0/1 float32 indicator of ``x != 0`` in ``x``'s memory layout: one comparison pass
    written straight into a float32 tensor (no bool temporary); ``x`` is not modified."""
    out = torch.empty_like(x, dtype=torch.float32)
    return torch.ne(x, 0, out=out)


class MeasuredOps:
    """Streams exact measured counts for one layer over input batches.

    Call :meth:`update` with every batch the layer receives (e.g. from a forward
    pre-hook), then read the totals ``effective_adds``, ``effective_mults``,
    ``effective_macs`` (over all outputs and images) or :meth:`per_image`.

    Args:
        layer: ``nn.Conv2d`` (zero padding, any stride/padding/dilation/groups) or
            ``nn.Linear``, or a subclass.
        codes: int8 ternary codes shaped like ``layer.weight`` (a snapshot is taken), or
            ``None`` for an FP layer: then only ``effective_macs`` is counted.
        single_conv: ``None`` picks the one-conv encoding when it is exact (see the module
            doc), ``False`` forces two convs, ``True`` forces the encoding and raises
            ``ValueError`` when it would not be exact.
    """

    def __init__(self, layer: nn.Module, codes: torch.Tensor | None, *,
                 single_conv: bool | None = None):
        self.kind = _check_layer(layer)
        self.layer = layer
        self.fan_in = _fan_in(layer)
        self.codes = None if codes is None else _check_codes(layer, codes).cpu().clone()
        self.shift = int(self.fan_in).bit_length()     # B = 2**shift > fan_in
        self.base = 1 << self.shift
        encoding_exact = self.base * self.fan_in < FLOAT32_EXACT
        if self.codes is not None and self.fan_in >= FLOAT32_EXACT:
            raise ValueError(f"fan_in {self.fan_in} >= 2**24: float32 counts would not be exact")
        if single_conv is None:
            single_conv = encoding_exact
        elif single_conv and not encoding_exact:
            raise ValueError(f"single_conv=True is not exact for fan_in {self.fan_in} "
                             f"(B·fan_in >= 2**24 with B = {self.base}, the power of two "
                             f"above fan_in); use single_conv=None or False")
        self.single_conv = bool(single_conv)
        self.images = 0
        self.effective_adds = 0
        self.effective_mults = 0
        self.effective_macs = 0
        self._weights: dict[torch.device, tuple[torch.Tensor, ...]] = {}
        self._usage: dict[tuple, torch.Tensor] = {}

    @property
    def is_ternary(self) -> bool:
        return self.codes is not None

    def __repr__(self) -> str:
        mode = ("fp" if not self.is_ternary else
                "single-conv" if self.single_conv else "two-conv")
        return (f"MeasuredOps({type(self.layer).__name__}, {mode}, images={self.images}, "
                f"adds={self.effective_adds}, mults={self.effective_mults}, "
                f"macs={self.effective_macs})")

    # -- cached per-device / per-shape tensors ---------------------------------------------

    def _indicator_weights(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(encoded,) or (pos, neg) float32 indicator weights on ``device``, built once."""
        if device not in self._weights:
            codes = self.codes.to(device)
            pos = (codes > 0).float()
            neg = (codes < 0).float()
            weights = (pos + float(self.base) * neg,) if self.single_conv else (pos, neg)
            if self.kind == "conv":
                weights = tuple(w.contiguous(memory_format=torch.channels_last) for w in weights)
            self._weights[device] = weights
        return self._weights[device]

    def _op(self, x_ind: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(x_ind, weight)
        L = self.layer
        return F.conv2d(x_ind, weight, None, L.stride, L.padding, L.dilation, L.groups)

    def _usage_maps(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """int64 maps, each shaped like one sample, of how many (output element, tap) pairs
        read each input position: [0] with every weight counted (for effective MACs),
        [1] (ternary layers only) with only the nonzero weights (for Σ n)."""
        key = (shape, device)
        if key not in self._usage:
            L = self.layer
            filters = [torch.ones(L.weight.shape, device=device)]
            if self.is_ternary:
                filters.append((self.codes != 0).float().to(device))
            if self.kind == "linear":
                # every output row reads each feature once per (nonzero) weight of its column
                maps = [f.sum(0).round().to(torch.int64).expand(shape) for f in filters]
            else:
                maps = []
                for f in filters:
                    # the input-gradient of the summed output: Σ over outputs of the taps
                    # (weights) that read each input position; padding taps drop out
                    # (autograd must work here even inside the caller's inference_mode)
                    with torch.inference_mode(False), torch.enable_grad(), _exact_float32(device):
                        x = torch.zeros((1,) + shape, device=device, requires_grad=True)
                        y = F.conv2d(x, f, None, L.stride, L.padding, L.dilation, L.groups)
                        (grad,) = torch.autograd.grad(y.sum(), x)
                    maps.append(grad[0].round().to(torch.int64))
            self._usage[key] = torch.stack(maps)
        return self._usage[key]

    # -- streaming ---------------------------------------------------------------------------

    @torch.no_grad()
    def update(self, x: torch.Tensor, x_ind: torch.Tensor | None = None) -> None:
        """Add the counts of one input batch (the tensor the layer receives).

        ``x_ind``: ``indicator(x)`` if the caller already computed it (saves a pass).

        ``x`` is ``(N, C, H, W)`` for a conv, ``(N, F)`` or ``(N, *, F)`` for a linear
        layer; any float dtype and device.  No tensor of ``x`` is kept.
        """
        if self.kind == "conv":
            if x.dim() != 4 or x.shape[1] != self.layer.in_channels:
                raise ValueError(f"conv input must be (N, {self.layer.in_channels}, H, W), "
                                 f"got {tuple(x.shape)}")
        elif x.dim() < 2 or x.shape[-1] != self.layer.in_features:
            raise ValueError(f"linear input must be (N, {self.layer.in_features}) or "
                             f"(N, *, {self.layer.in_features}), got {tuple(x.shape)}")
        if x.shape[0] >= FLOAT32_EXACT:
            raise ValueError("batch too large for exact float32 counts: split it")
        device = x.device
        if x_ind is None:
            x_ind = indicator(x)

        # Linear in x_ind: (Σ_batch x_ind) · usage map, in int64 (exact for any total).
        usage = self._usage_maps(tuple(x.shape[1:]), device)
        nonzero_count = x_ind.sum(0).round_().to(torch.int64)
        totals = (usage * nonzero_count).flatten(1).sum(1).tolist()
        self.effective_macs += totals[0]
        self.images += int(x.shape[0])
        if not self.is_ternary:
            return
        sum_n = totals[1]  # Σ over outputs of n = n+ + n−, also linear in x_ind

        weights = self._indicator_weights(device)
        if self.kind == "conv":
            # channels-last convolutions are several times faster on CPU (oneDNN)
            x_ind = x_ind.contiguous(memory_format=torch.channels_last)
        with _exact_float32(device):
            if self.single_conv:
                # v = n+ + B·n−, integer-valued floats (< 2**24, checked in __init__)
                v = _rounded_int32(self._op(x_ind, weights[0]))
                del x_ind
                has_n = _count(v)                                   # n > 0
                has_neg = _count(v >> self.shift)                   # n− > 0
                has_pos = _count(v.bitwise_and_(self.base - 1))     # n+ > 0
            else:
                n_pos = _rounded_int32(self._op(x_ind, weights[0]))
                n_neg = _rounded_int32(self._op(x_ind, weights[1]))
                del x_ind
                has_pos = _count(n_pos)
                has_neg = _count(n_neg)
                has_n = _count(n_pos.add_(n_neg))
        # Σ max(n − 1, 0) = Σ n − #(n > 0)
        self.effective_adds += sum_n - has_n
        self.effective_mults += has_pos + has_neg

    def per_image(self) -> dict[str, float | None]:
        """Each total divided by the number of samples seen (adds/mults None for FP)."""
        if self.images == 0:
            raise ValueError("no input seen yet: call update(x) with the layer's inputs first")
        per = lambda total: total / self.images  # noqa: E731
        return {"effective_adds": per(self.effective_adds) if self.is_ternary else None,
                "effective_mults": per(self.effective_mults) if self.is_ternary else None,
                "effective_macs": per(self.effective_macs)}
