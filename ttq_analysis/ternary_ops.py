"""Ternary (and binary) add/mult counts of conv2d and linear layers, dense and measured on
real inputs.

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

Other weight formats (:mod:`ttq_analysis.weight_formats`)
--------------------------------------------------------
* **binary** (``scale_mults="per_output"``): an output is ``α_c·(Σ(inputs under +) −
  Σ(inputs under −))``, one scale per output channel.  Additions as above, max(n − 1, 0)
  over the nonzero terms; multiplications: **one** per output with n > 0 (ternary: one
  per sign present).  Worked example, one output with inputs ``[a, 0, c, d]`` and weights
  α·``[+, +, −, −]``: dense activations n = 4, so 3 additions ((a + 0) − c − d) and 1
  multiplication (by α); measured, the zero input drops out, n = 3: 2 additions (a − c −
  d) and 1 multiplication.  With inputs ``[0, 0, 0, 0]``: nothing (the output is not
  computed).  ``"window"``: a computed output costs n − 1 additions and one
  multiplication when its filter has a nonzero weight (a binary filter always has).
* **ternary** (``scale_mults="per_sign"``, the default): the convention above, unchanged.
* **symmetric ternary** (one scale α for both signs: a TWN layer, or a plain layer whose
  |Wp − Wn| is within the ternary tolerance; :mod:`ttq_analysis.weight_formats`): an output
  is ``α·(Σ(inputs under +) − Σ(inputs under −))``, counted with the binary rule
  (``scale_mults="per_output"``): **one** multiplication per computed output.  In the
  worked example above, weights α·``[+, +, 0, −]`` cost 1 multiplication, not 2 (dense
  and measured); with inputs ``[0, 0, c, d]`` ``"window"`` counts 1 and ``"exact"`` 1.
* **int4, int8**: multiply-accumulates, not counted here: dense ``macs`` (fvcore) and
  measured ``effective_macs`` (MACs whose input is nonzero, weights treated as dense,
  so a zero integer weight still counts), at the weight × activation precision
  (:mod:`ttq_analysis.energy`).  Worked example, weights s·``[3, −1, 0, 7]`` (int4) and
  inputs ``[a, 0, c, d]``: 4 MACs dense, 3 measured (a, c, d).  The step s_c is applied
  once per output with the requantization or batch-norm scale and is not counted (as
  bias and batch norm are not).

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

Which outputs count as computed (``partial_sums``)
--------------------------------------------------
Σ n over all outputs is exact and cheap (below).  Whether an output's sum, or one sign's
partial sum, is *empty* on the real inputs is a per-output question that does not reduce
to a sum over inputs, so two definitions are offered:

* ``"window"`` (default, what ``analyze`` reports): an output is *computed* when its
  receptive field (the input taps of its group, padding excluded) holds at least one
  nonzero input — the test a zero-skipping datapath can make from the input zero map.
  A computed output costs ``n − 1`` additions and one multiplication per sign present in
  its filter; an output whose receptive field is all zero costs nothing.  So
  ``effective_adds = Σ n − Σ_computed [filter has a nonzero weight]`` and
  ``effective_mults = Σ_computed ([filter has a + weight] + [filter has a − weight])``.
  Against ``"exact"`` below the only difference is computed outputs with an empty sum or
  partial sum (nonzero inputs, all of them under zero weights or under the other sign):
  ``exact_adds − window_adds`` = number of computed outputs with n = 0 (≥ 0), and
  ``window_mults − exact_mults`` = number of computed outputs' signs present in the
  filter whose partial sum is empty (≥ 0).  In the worked example with inputs
  ``[0, 0, c, d]`` the output is computed (c, d ≠ 0): 0 additions (n − 1) and 2
  multiplications (its filter has both signs; the + partial sum is empty), where
  ``"exact"`` counts 0 and 1.  On the example ternary ResNet-20 over 2,000 CIFAR-10 test
  images (``benchmarks/analysis.py --compare-exact``) window additions are 3.7 per image
  below the exact 9,584,922 (−0.00004 %; worst layer −0.0012 %) and window
  multiplications 594 per image above the exact 343,470 (+0.17 %; worst layer +1.8 %).
* ``"exact"``: the per-output definition of the convention above (n±, n of every output
  on the real inputs); one extra convolution of 0/1 indicators per layer, about the
  cost of the layer's own convolution.

How the measured counts are computed
------------------------------------
**Linear in the input indicator** (both modes).  With ``x_ind = (x != 0)``,
``effective_macs`` and ``Σ n`` are sums over input positions of ``x_ind`` times a
*usage map* U (how many output elements × filter taps read each input position; the
input-gradient of the layer's op with all-ones weights — or the 0/1 nonzero-weight
indicators for ``Σ n`` — and an all-ones output gradient), built once per input shape:
``Σ_batch Σ_positions x_ind · U``, computed as ``(Σ_batch x_ind) · U`` in int64, so it is
exact for any batch size.  This is ``Σ_(c,k) S[c,k] · N_c(k)`` (S[c,k] = nonzero weights
of input channel c at kernel offset k over all filters, N_c(k) = nonzero inputs of channel
c that offset k reads over all output positions) summed per input position instead of per
(c, k); padding, stride, dilation and groups are inside U.  O(C_in·H·W) per image.

**Computed outputs** (``"window"``): per group, the channel sum of ``x_ind`` summed over
every receptive field (separable sums of strided slices, with the layer's kernel size,
stride, zero padding and dilation); its nonzero entries are the computed output
positions, counted once and multiplied by the group's filter counts.  O(C_in·H·W +
groups·H_out·W_out·(k_h + k_w)) per image.

**Per-output counts** (``"exact"``).  The layer's own op (``F.conv2d`` with its
stride/padding/dilation/groups, or ``F.linear``) runs on 0/1 indicators: ``x_ind`` and
weight indicators, in float32, which is exact for integers below 2**24.  One conv gives
both counts by encoding + weights as 1 and − weights as ``B``, the smallest power of two
above fan_in: ``v = n+ + B·n−``.  The output is rounded into int32 once and decoded with
integer operations: n > 0 ⟺ v ≠ 0, n− > 0 ⟺ ``v >> log2(B)`` ≠ 0, n+ > 0 ⟺
``v & (B − 1)`` ≠ 0, each counted with ``count_nonzero``.  This is used when
``B·fan_in < 2**24`` (fan_in ≤ 4095), otherwise two convs (+ and − indicators
separately) are used.  Additions = Σ n − #(n > 0).

On CUDA, TF32 is switched off around these ops (TF32 would round B) and cuDNN is asked
for deterministic algorithms; ``analyze`` also keeps the model's own forward in full
float32 (``ttq_analysis.precision.full_float32``).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["dense_ternary_ops", "MeasuredOps", "FLOAT32_EXACT", "PARTIAL_SUMS", "SCALE_MULTS"]

FLOAT32_EXACT = 2 ** 24  # every integer below this is exact in float32
PARTIAL_SUMS = ("window", "exact")  # MeasuredOps: which outputs count as computed
SCALE_MULTS = ("per_sign", "per_output")  # ternary Wp/Wn per sign present; binary, TWN one α


def _check_scale_mults(scale_mults: str) -> str:
    if scale_mults not in SCALE_MULTS:
        raise ValueError(f"scale_mults must be one of {', '.join(SCALE_MULTS)}, "
                         f"got {scale_mults!r}")
    return scale_mults


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


def _pads(padding, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, ...]:
    """(left, right, top, bottom) zero padding of a conv, as ``F.pad`` takes it; string
    paddings as ``nn.Conv2d`` resolves them ('same': the odd pixel on the right/bottom)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]       # 'same'
        return (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2)
    return (padding[1], padding[1], padding[0], padding[0])


def _box_sums(t: torch.Tensor, kernel, stride, padding, dilation) -> torch.Tensor:
    """Each ``(N, G, H, W)`` plane summed over every receptive field of a conv with this
    kernel size, stride, zero padding and dilation: ``(N, G, H_out, W_out)``.  Separable
    sums of strided slices (k_h + k_w additions), several times faster on the CPU than a
    one-channel convolution, and exact for the integer-valued floats it gets."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    t = F.pad(t, _pads(padding, (kh, kw), (dh, dw)))
    ho = (t.shape[-2] - dh * (kh - 1) - 1) // sh + 1
    wo = (t.shape[-1] - dw * (kw - 1) - 1) // sw + 1
    rows = t[..., 0:sh * (ho - 1) + 1:sh, :].clone()
    for a in range(1, kh):
        rows += t[..., a * dh:a * dh + sh * (ho - 1) + 1:sh, :]
    out = rows[..., 0:sw * (wo - 1) + 1:sw].clone()
    for b in range(1, kw):
        out += rows[..., b * dw:b * dw + sw * (wo - 1) + 1:sw]
    return out


def _filter_counts(codes: torch.Tensor, groups: int) -> list[tuple[int, int, int]]:
    """Per group of output channels: filters with a nonzero, a +, a − weight."""
    flat = codes.flatten(1)
    per_group = flat.shape[0] // groups
    out = []
    for g in range(groups):
        f = flat[g * per_group:(g + 1) * per_group]
        out.append((int((f != 0).any(1).sum()), int((f > 0).any(1).sum()),
                    int((f < 0).any(1).sum())))
    return out


def dense_ternary_ops(layer: nn.Module, codes: torch.Tensor,
                      output_positions: int, scale_mults: str = "per_sign") -> tuple[int, int]:
    """(adds, mults) per image assuming dense activations (every input nonzero).

    Args:
        layer: an ``nn.Conv2d`` or ``nn.Linear`` (or subclass).
        codes: int8 sign codes in {-1, 0, +1}, shaped like ``layer.weight``.
        output_positions: output elements per output channel and image —
            ``H_out·W_out`` for a conv, rows of input per sample for a linear layer
            (1 for an ``(N, F)`` input, T for ``(N, T, F)``).
        scale_mults: ``"per_sign"`` (ternary, default) or ``"per_output"`` (binary, and
            symmetric ternary such as TWN: one scale for both signs).

    Per output channel o with ``npos_o`` + and ``nneg_o`` − weights in its filter:
    ``adds_o = max(npos_o + nneg_o − 1, 0)``, ``mults_o = [npos_o > 0] + [nneg_o > 0]``
    (``"per_output"``: ``[npos_o + nneg_o > 0]``), each times ``output_positions``.
    """
    _check_layer(layer)
    per_output = _check_scale_mults(scale_mults) == "per_output"
    codes = _check_codes(layer, codes).flatten(1)
    npos = (codes > 0).sum(1)
    nneg = (codes < 0).sum(1)
    adds = (npos + nneg - 1).clamp(min=0).sum()
    mults = ((npos + nneg) > 0).sum() if per_output else (npos > 0).sum() + (nneg > 0).sum()
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
        codes: int8 sign codes in {−1, 0, +1} shaped like ``layer.weight`` (a snapshot is
            taken) of an add-only layer (ternary, binary), or ``None`` for a layer counted
            in MACs (FP, int4, int8): then only ``effective_macs`` is counted.
        partial_sums: ``"window"`` (default: an output is computed when its receptive
            field holds a nonzero input; linear-time) or ``"exact"`` (per-output empty sums
            and partial sums; one indicator convolution per update); see the module doc.
        single_conv: ``"exact"`` only: ``None`` picks the one-conv encoding when it is
            exact (see the module doc), ``False`` forces two convs, ``True`` forces the
            encoding and raises ``ValueError`` when it would not be exact.
        scale_mults: ``"per_sign"`` (ternary, default: one multiplication per sign, Wp
            and Wn) or ``"per_output"`` (binary, symmetric ternary such as TWN: one α_c or
            α per computed output); see the module doc.
    """

    def __init__(self, layer: nn.Module, codes: torch.Tensor | None, *,
                 partial_sums: str = "window", single_conv: bool | None = None,
                 scale_mults: str = "per_sign"):
        self.kind = _check_layer(layer)
        self.scale_mults = _check_scale_mults(scale_mults)
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
        if partial_sums not in PARTIAL_SUMS:
            raise ValueError(f"partial_sums must be one of {', '.join(PARTIAL_SUMS)}, "
                             f"got {partial_sums!r}")
        self.partial_sums = partial_sums
        self.groups = int(layer.groups) if self.kind == "conv" else 1
        self._filter_counts = None if self.codes is None else _filter_counts(self.codes,
                                                                               self.groups)
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
        mode = ("fp" if not self.is_ternary else self.partial_sums
                if self.partial_sums == "window" else
                "exact, single-conv" if self.single_conv else "exact, two-conv")
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

    @property
    def wants_group_sums(self) -> bool:
        """Whether :meth:`update` uses :meth:`group_sums` (a ternary conv counted with
        ``partial_sums="window"``): a caller that needs per-image nonzero counts too can
        compute them once from it (``group_sums(x_ind).sum((1, 2, 3))``)."""
        return self.is_ternary and self.kind == "conv" and self.partial_sums == "window"

    def group_sums(self, x_ind: torch.Tensor) -> torch.Tensor:
        """``(N, groups, H, W)``: nonzero inputs per image, group of input channels and
        position (float32 integers: exact below 2**24)."""
        n, c, h, w = x_ind.shape
        return x_ind.reshape(n, self.groups, c // self.groups, h, w).sum(2)

    @torch.no_grad()
    def update(self, x: torch.Tensor, x_ind: torch.Tensor | None = None,
               group_sums: torch.Tensor | None = None) -> None:
        """Add the counts of one input batch (the tensor the layer receives).

        ``x_ind``: ``indicator(x)`` if the caller already computed it (saves a pass);
        ``group_sums``: ``self.group_sums(x_ind)`` likewise (used when
        :attr:`wants_group_sums`).

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

        if self.partial_sums == "window":
            computed = self._computed_positions(x_ind, group_sums)
            self.effective_adds += sum_n - sum(a * nz for a, (nz, _, _) in
                                               zip(computed, self._filter_counts))
            per_output = self.scale_mults == "per_output"
            self.effective_mults += sum(a * (nz if per_output else p + n)
                                        for a, (nz, p, n) in zip(computed, self._filter_counts))
            return
        has_n, has_pos, has_neg = self._nonempty_outputs(x_ind)
        # Σ max(n − 1, 0) = Σ n − #(n > 0)
        self.effective_adds += sum_n - has_n
        self.effective_mults += has_n if self.scale_mults == "per_output" else has_pos + has_neg

    def _computed_positions(self, x_ind: torch.Tensor,
                            per_group: torch.Tensor | None = None) -> list[int]:
        """Per group: (image, output position) pairs whose receptive field holds a nonzero
        input (``partial_sums="window"``)."""
        if self.kind == "linear":
            return [_count(x_ind.sum(-1))]
        L = self.layer
        g = self.groups
        if per_group is None:
            per_group = self.group_sums(x_ind)
        window = _box_sums(per_group, tuple(L.weight.shape[2:]), L.stride, L.padding,
                           L.dilation)
        if g == 1:
            return [_count(window)]
        return torch.count_nonzero(window, dim=(0, 2, 3)).tolist()

    def _nonempty_outputs(self, x_ind: torch.Tensor) -> tuple[int, int, int]:
        """#(n > 0), #(n+ > 0), #(n− > 0) over every output (``partial_sums="exact"``)."""
        device = x_ind.device
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
        return has_n, has_pos, has_neg

    def per_image(self) -> dict[str, float | None]:
        """Each total divided by the number of samples seen (adds/mults None for FP)."""
        if self.images == 0:
            raise ValueError("no input seen yet: call update(x) with the layer's inputs first")
        per = lambda total: total / self.images  # noqa: E731
        return {"effective_adds": per(self.effective_adds) if self.is_ternary else None,
                "effective_mults": per(self.effective_mults) if self.is_ternary else None,
                "effective_macs": per(self.effective_macs)}
